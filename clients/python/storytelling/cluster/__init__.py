"""`storytelling cluster status`: the state of a StorytellingPainter release on Kubernetes.

`status` turns the release's API objects into a `ReleaseStatus` (pure, tested on recorded objects);
`fetch` reads them with the `kubernetes` client, an optional dependency of the SDK
(`pip install 'storytelling-client[cluster]'`).
"""
