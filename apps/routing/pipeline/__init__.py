"""The /v1 request pipeline: one module per step, shared by HTTP and WebSocket edges."""
