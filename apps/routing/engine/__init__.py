"""The routing engine: hints, candidate filtering and scoring, task clusters, the bandit.

`hints.parse_hints` turns a request into a `RoutingRequest`; `router.RoutingEngine.decide`
filters and scores the route's candidates (`ranking`, rules in `scoring`), classifies the
task (`features`, `clusters`) and lets the bandit choose on learned routes (`bandit`),
returning a `scoring.RouteDecision`. After the answer, `learn`, `record_outcome` and
`record_feedback` teach it; `learning` persists what it learnt and reads it back.
"""
