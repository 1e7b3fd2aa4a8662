"""Reads a release's objects from the Kubernetes API with the official client, as plain JSON dicts.

Needs read access (get/list) to Deployments, StatefulSets, Pods, Services, EndpointSlices, Events and
ConfigMaps in the release's namespace: the built-in `view` ClusterRole has all of them.
"""

from __future__ import annotations

import json
from typing import Any

INSTANCE = "app.kubernetes.io/instance"


class ClusterError(Exception):
    """The API could not be reached or read; the message says why and what to do."""


def api_client(context: str | None = None, kubeconfig: str | None = None) -> Any:
    """A client from the kubeconfig (or, inside a pod, the service account)."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise ClusterError(
            "storytelling cluster needs the kubernetes package: pip install 'storytelling-client[cluster]'"
        ) from None
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    except (config.ConfigException, FileNotFoundError, TypeError) as kube_error:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            raise ClusterError(
                f"no Kubernetes configuration: {kube_error}; pass --kubeconfig or --context"
            ) from None
    return client.ApiClient(configuration)


def read_release(api: Any, namespace: str, release: str) -> dict[str, list[dict]]:
    """The objects `storytelling.cluster.status.release_status` takes, by kind."""
    import urllib3
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    selector = f"{INSTANCE}={release}"
    core, apps, discovery = client.CoreV1Api(api), client.AppsV1Api(api), client.DiscoveryV1Api(api)

    def items(call, **options) -> list[dict]:
        response = call(namespace, _preload_content=False, _request_timeout=30, **options)
        return json.loads(response.data).get("items") or []

    try:
        objects = {
            "deployments": items(apps.list_namespaced_deployment, label_selector=selector),
            "statefulsets": items(apps.list_namespaced_stateful_set, label_selector=selector),
            "pods": items(core.list_namespaced_pod, label_selector=selector),
            "services": items(core.list_namespaced_service, label_selector=selector),
            "configmaps": items(
                core.list_namespaced_config_map,
                label_selector=f"{selector},storytelling.dev/cluster-info=true",
            ),
            "events": items(core.list_namespaced_event, field_selector="type=Warning"),
        }
        names = ",".join(sorted(s["metadata"]["name"] for s in objects["services"]))
        objects["endpointslices"] = (
            items(
                discovery.list_namespaced_endpoint_slice,
                label_selector=f"kubernetes.io/service-name in ({names})",
            )
            if names
            else []
        )
    except ApiException as exc:
        if exc.status in (401, 403):
            raise ClusterError(
                f"the Kubernetes API refused to list {namespace}'s objects ({exc.status} {exc.reason}); "
                "read access to the namespace is needed (the built-in view role)"
            ) from None
        raise ClusterError(f"the Kubernetes API answered {exc.status} {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterError(f"cannot reach the Kubernetes API at {api.configuration.host}: {exc}") from None
    return objects
