"""Hand-written parts of the API that services and clients share, beside the generated `storytelling.v1`.

- `vocabulary`: enum labels, ended states, default ports, the rule for when a stage is done;
- `layout`: the job directory's artifact layout and its atomic reads and writes;
- `gallery` (with `chart`): the static gallery page of a job directory;
- `credentials`: bearer token format, digests, scopes and log redaction; TLS channel credentials.
- `stackstatus`: the local stack's status file (launcher and CLI).
- `pools`: the story pool format, its loader and the shipped pool, read by the story service (exemplars)
  and the evaluation service (novelty, memorisation, control key points).

Like `storytelling.v1` they need only protobuf (and grpcio), so services import them without the SDK.
"""
