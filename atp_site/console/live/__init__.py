"""The overview's live figures, merged from every gateway process, and the console's WebSocket.

- `samples`: what one process counts per time bucket (counters and histogram buckets, never
  percentiles) and the arithmetic that merges buckets and reads percentiles from them;
- `store`: where each process publishes its buckets (Redis with REDIS_URL, else in process);
- `publisher`: fed by the request log's write-behind flush (behind the response), publishes
  once a second and pushes the request stream through the channel layer;
- `figures`: the overview's figures for one viewer, narrowed by their permissions;
- `topics`: the WebSocket topics, who may subscribe to each, and what each carries;
- `consumer`: the `/ws/console/` consumer.
"""
