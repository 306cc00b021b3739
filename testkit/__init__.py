"""What the tests and the benchmarks share, imported from the repository root and never
installed with the app: local HTTP fakes of Slack, Anthropic, Stripe and the sequencers
(`fakes/`), the app served over HTTP with a client that sends what Slack sends (`harness`), a
clock that moves only when told (`clock`), throwaway databases (`databases`), starting and
watching processes (`processes`), and waiting for what a test expects (`waiting`)."""
