"""The Helm chart, rendered offline for many value sets, every manifest validated as Kubernetes would.

No API server, kind or k3s can run on our machines (ENGINEERING.md), so nothing here is applied to a
cluster: manifests are rendered by Helm itself (helm-python-sdk) and validated against the Kubernetes
OpenAPI schemas in strict mode (kubernetes-validate; unknown fields fail). Custom resources, which have
no schema there (ServiceMonitor, PrometheusRule, ScaledObject), are checked field by field below.
"""

from __future__ import annotations

import json
from pathlib import Path

import helm_python
import kubernetes_validate
import pytest
import yaml
from storytelling.api.vocabulary import DEFAULT_PORTS
from storytelling.stack.profiles import SharedEngine, load_profile, profile_names

from tests.cluster.chart import (
    CHART,
    CUSTOM_KINDS,
    NAMESPACE,
    PREFIX,
    ROOT,
    Pod,
    allowed,
    container,
    env,
    example,
    objects,
    release_pods,
    render,
    secret_env,
    workloads,
)

MONITORING = {
    "monitoring": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "dashboards": {"enabled": True},
        "grafanaUrl": "https://grafana.example.org",
    }
}
ENGINE_COMPONENTS = ("storyteller", "judge", "painter")
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SERVICE_COMPONENTS = ("orchestrator", "story", "render", "evaluation")
VALUE_SETS = {
    "defaults": {},
    "gpu-cluster-24gb": example("gpu-24gb-l4"),
    "gpu-cluster-80gb": example("gpu-80gb-h100"),
    "cpu-engines": example("cpu-kind"),
    "offline": {"profile": "offline"},
    "autoscaling-keda": {"autoscaling": {"enabled": True, "driver": "keda"}, **MONITORING},
    "autoscaling-hpa": {"autoscaling": {"enabled": True, "driver": "hpa"}},
    "autoscaling-off": {"autoscaling": {"enabled": False}},
    "tls-and-tokens": {
        "tls": {
            "enabled": True,
            "secretName": "api-tls",
            "mutual": True,
            "clientIdentities": ["ci.example.org"],
            "internal": {"enabled": True, "secrets": {c: f"{c}-tls" for c in SERVICE_COMPONENTS}},
        },
        "auth": {
            "enabled": True,
            "tokensSecret": "api-tokens",
            "services": {
                "enabled": True,
                "tokensSecret": "service-tokens",
                "orchestratorToken": {"name": "orchestrator-token", "key": "token"},
            },  # fmt: skip
        },
    },
    "external-engines": example("remote"),
    "dns-discovery-and-egress": {"discovery": "dns", "networkPolicy": {"egress": {"enabled": True}}},
    "models-on-a-pvc": {"modelStorage": {"mode": "pvc", "existingClaim": "weights"}},
}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def value_set(request) -> tuple[str, list[dict]]:
    return request.param, render(VALUE_SETS[request.param])


def validate(name: str, docs: list[dict], kubernetes: str) -> int:
    checked = 0
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, kubernetes, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{name}: {doc['kind']} {doc['metadata']['name']} (Kubernetes {kubernetes}): {error}")
        checked += 1
    return checked


def test_every_manifest_is_valid_kubernetes_in_strict_mode(value_set):
    """Against the oldest Kubernetes the chart supports (Chart.yaml kubeVersion)."""
    name, docs = value_set
    assert validate(name, docs, "1.29") >= 15


@pytest.mark.parametrize("name", ["gpu-cluster-24gb", "gpu-cluster-80gb"])
def test_the_gpu_clusters_manifests_are_valid_on_a_recent_kubernetes_too(name):
    assert validate(name, render(VALUE_SETS[name]), "1.35") >= 15


def test_helm_lint_finds_nothing(value_set):
    name, _ = value_set
    findings = helm_python.lint(CHART, VALUE_SETS[name], strict=True)
    messages = [m for m in json.dumps(findings).split('"') if "[ERROR]" in m or "[WARNING]" in m]
    assert not messages, messages


def test_names_and_labels_are_consistent(value_set):
    _, docs = value_set
    for doc in docs:
        meta = doc["metadata"]
        assert meta["name"].startswith(PREFIX), meta["name"]
        assert len(meta["name"]) <= 63
        assert meta["labels"]["app.kubernetes.io/instance"] == "sp"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"


# Workloads.


def test_the_four_services_and_the_profiles_engines_are_deployed():
    expected = {
        "defaults": {*SERVICE_COMPONENTS, "storyteller", "judge", "painter"},
        "cpu-engines": {*SERVICE_COMPONENTS, "storyteller", "painter"},  # the profile has no judge
        "offline": set(SERVICE_COMPONENTS),
        "external-engines": set(SERVICE_COMPONENTS),
    }
    for name, components in expected.items():
        assert set(workloads(render(VALUE_SETS[name]))) == components, name


def test_service_ports_follow_the_api_vocabulary():
    docs = render()
    for component, ports_of in DEFAULT_PORTS.items():
        port, metrics_port = ports_of.grpc, ports_of.metrics
        ports = {p["name"]: p["containerPort"] for p in container(workloads(docs)[component])["ports"]}
        assert (ports["grpc"], ports["metrics"]) == (port, metrics_port), component


def test_the_orchestrator_is_one_statefulset_with_its_data_on_a_volume():
    docs = render()
    orchestrator = objects(docs, "StatefulSet")[f"{PREFIX}-orchestrator"]
    spec = orchestrator["spec"]
    assert spec["replicas"] == 1
    (claim,) = spec["volumeClaimTemplates"]
    mount = {m["name"]: m["mountPath"] for m in container(orchestrator)["volumeMounts"]}[
        claim["metadata"]["name"]
    ]
    assert env(orchestrator)["STORYTELLING_ORCHESTRATOR_DATA_DIR"] == mount
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    # Grace for running jobs to record their state, longer than the service's own drain.
    grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
    assert float(env(orchestrator)["STORYTELLING_ORCHESTRATOR_GRACE_PERIOD_S"]) < grace


def test_rolling_updates_never_take_a_ready_pod_away(value_set):
    _, docs = value_set
    for deployment in objects(docs, "Deployment").values():
        assert deployment["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }


def test_services_are_ready_on_grpc_health_and_alive_on_their_port(value_set):
    name, docs = value_set
    for component in SERVICE_COMPONENTS:
        workload = workloads(docs)[component]
        probes = container(workload)
        tls = VALUE_SETS[name].get("tls", {})
        serves_tls = (
            tls.get("enabled") if component == "orchestrator" else tls.get("internal", {}).get("enabled")
        )
        health_port = bool(serves_tls)
        expected = 50060 if health_port else DEFAULT_PORTS[component].grpc
        assert probes["readinessProbe"]["grpc"] == {"port": expected}, (name, component)
        assert probes["livenessProbe"]["tcpSocket"] == {"port": "grpc"}
        assert probes["startupProbe"]["tcpSocket"] == {"port": "grpc"}


def test_engines_get_at_least_ten_minutes_to_load_their_models(value_set):
    _, docs = value_set
    for component, workload in workloads(docs).items():
        if component not in ENGINE_COMPONENTS:
            continue
        probe = container(workload)["startupProbe"]
        assert probe["periodSeconds"] * probe["failureThreshold"] >= 600, component
        assert probe["httpGet"]["path"] in ("/health", "/v2/health/ready")


def test_gpu_profiles_request_gpus_on_gpu_nodes_and_cpu_profiles_do_not():
    gpu = workloads(render(VALUE_SETS["gpu-cluster-24gb"]))
    assert "judge" not in gpu, "gpu-24gb judges with its storyteller's model"
    for component in ("storyteller", "painter"):
        spec = gpu[component]["spec"]["template"]["spec"]
        resources = container(gpu[component])["resources"]
        assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == 1
        assert spec["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        assert container(gpu[component])["image"].startswith(("vllm/vllm-openai:", "ghcr.io/"))
    cpu = workloads(render(VALUE_SETS["cpu-engines"]))
    for component in ("storyteller", "painter"):
        assert "nvidia.com/gpu" not in json.dumps(container(cpu[component])["resources"])
        assert "tolerations" not in cpu[component]["spec"]["template"]["spec"]
    assert container(cpu["storyteller"])["image"].startswith("public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:")


def test_every_pod_runs_unprivileged(value_set):
    name, docs = value_set
    for component, workload in workloads(docs).items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
        for each in pod["containers"] + pod.get("initContainers", []):
            assert each["securityContext"]["allowPrivilegeEscalation"] is False, component
            assert each["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert "resources" in each and each["resources"]["requests"], (component, each["name"])
        discovery = (VALUE_SETS[name].get("discovery") or "kubernetes") == "kubernetes"
        assert pod["automountServiceAccountToken"] is (component in SERVICE_COMPONENTS and discovery)


def test_pdbs_cover_every_multi_replica_component(value_set):
    name, docs = value_set
    budgets = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]: d
        for d in objects(docs, "PodDisruptionBudget").values()
    }
    for component, workload in workloads(docs).items():
        if (
            component == "orchestrator"
            or name == "cpu-engines"
            and component in ("story", "render", "evaluation")
        ):
            continue
        assert component in budgets, (name, component)
        assert budgets[component]["spec"]["minAvailable"] == 1


# What the services are told.


def settings_of(component: str):
    from scripts.config_reference import SETTINGS, load

    return load(SETTINGS[component])


def test_every_setting_the_chart_passes_is_one_the_service_accepts(value_set, monkeypatch):
    """Loads each service's settings class from the env the chart gives it: an unknown field, a bad value
    or a target that does not parse fails here rather than in a crash-looping pod."""
    from storytelling.runtime.config import ServiceSettings

    name, docs = value_set
    # Settings of the security work (TLS, tokens): checked once the runtime has them.
    pending = {"tls_cert_file", "tls_key_file", "tls_client_ca_file", "tls_client_identities",
               "auth_tokens_file", "health_port"} - set(ServiceSettings.model_fields)  # fmt: skip
    for component in SERVICE_COMPONENTS:
        settings = settings_of(component)
        prefix = f"STORYTELLING_{component.upper()}_"
        variables = {k: v for k, v in env(workloads(docs)[component]).items() if k.startswith(prefix)}
        variables.update({k: "secret-from-kubernetes" for k in secret_env(workloads(docs)[component])})
        fields = {k.removeprefix(prefix).lower() for k in variables if k.startswith(prefix)}
        assert fields - pending <= set(settings.model_fields), (
            name,
            component,
            fields - set(settings.model_fields),
        )
        with monkeypatch.context() as patch:
            for key, value in variables.items():
                if key.removeprefix(prefix).lower() not in pending:
                    patch.setenv(key, value)
            loaded = settings.load([])
        assert loaded.host == "0.0.0.0"


def test_services_reach_every_replica_of_the_next_hop():
    docs = render()
    assert env(workloads(docs)["orchestrator"])["STORYTELLING_ORCHESTRATOR_RENDER_ADDRESS"] == (
        f"kubernetes:///{PREFIX}-render.{NAMESPACE}:50052"
    )
    assert (
        env(workloads(docs)["render"])["STORYTELLING_RENDER_TRITON_URL"]
        == f"kubernetes:///{PREFIX}-painter.{NAMESPACE}:8001"
    )
    engines = json.loads(env(workloads(docs)["story"])["STORYTELLING_STORY_ENGINES"])
    (storyteller,) = engines.values()
    assert storyteller["discovery"] == "kubernetes"
    assert storyteller["base_url"] == f"http://{PREFIX}-storyteller.{NAMESPACE}.svc:8000/v1"
    judges = json.loads(env(workloads(docs)["evaluation"])["STORYTELLING_EVALUATION_JUDGES"])
    assert judges["judge"]["base_url"] == f"http://{PREFIX}-judge.{NAMESPACE}.svc:8000/v1"
    # The Services behind those targets are headless: no virtual IP to stick to.
    services = objects(docs, "Service")
    for name in ("story", "render", "evaluation", "storyteller", "judge", "painter"):
        assert services[f"{PREFIX}-{name}"]["spec"]["clusterIP"] == "None"
    dns = render(VALUE_SETS["dns-discovery-and-egress"])
    assert env(workloads(dns)["orchestrator"])["STORYTELLING_ORCHESTRATOR_STORY_ADDRESS"] == (
        f"dns:///{PREFIX}-story.{NAMESPACE}.svc:50051"
    )
    assert not objects(dns, "Role"), "no API access without the kubernetes discovery"


def test_the_endpoint_watch_gets_least_privilege():
    docs = render()
    (role,) = objects(docs, "Role").values()
    assert role["rules"] == [
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    (binding,) = objects(docs, "RoleBinding").values()
    assert [s["name"] for s in binding["subjects"]] == [f"{PREFIX}-services"]
    for component in ENGINE_COMPONENTS:
        pod = workloads(docs)[component]["spec"]["template"]["spec"]
        assert (
            pod["serviceAccountName"] == f"{PREFIX}-engines" and pod["automountServiceAccountToken"] is False
        )


@pytest.mark.parametrize("name", ["gpu-24gb", "gpu-80gb"])
def test_the_engines_take_models_and_settings_from_the_profile_file(name):
    """The chart reads deploy/profiles/<name>.yaml, the file the local stack starts: each engine's
    arguments are checked against that file as the product's own loader reads it (defaults filled)."""
    profile = load_profile(name)
    docs = workloads(render({"profile": name}))

    def vllm_args(component: str, model) -> None:
        args = container(docs[component])["args"]
        expected = [f"--model={model.model}", f"--served-model-name={model.served_name}", "--host=0.0.0.0",
                    "--port=8000", f"--max-model-len={model.max_model_len}", f"--dtype={model.dtype}",
                    "--gpu-memory-utilization=0.9"]  # fmt: skip
        if model.quantization:
            expected.append(f"--quantization={model.quantization}")
        assert args == expected + model.engine_args, component
        (fetch,) = docs[component]["spec"]["template"]["spec"]["initContainers"]
        assert fetch["args"] == [model.model]

    vllm_args("storyteller", profile.storyteller)
    story, sampling = env(docs["story"]), profile.storyteller.sampling
    assert (story["STORYTELLING_STORY_DEFAULT_ENGINE"], story["STORYTELLING_STORY_DEFAULT_MODE"]) == (
        profile.storyteller.served_name,
        profile.storyteller.mode,
    )
    for field in ("temperature", "top_p", "max_tokens", "max_attempts"):
        assert float(story[f"STORYTELLING_STORY_{field.upper()}"]) == getattr(sampling, field), field
    judges = json.loads(env(docs["evaluation"])["STORYTELLING_EVALUATION_JUDGES"])
    if isinstance(profile.judge, SharedEngine):  # one model writes and judges: no judge pod
        assert "judge" not in docs
        assert judges["judge"]["base_url"].startswith(f"http://{PREFIX}-storyteller.")
        assert judges["judge"]["model"] == profile.storyteller.served_name
    else:
        vllm_args("judge", profile.judge)
        assert judges["judge"]["model"] == profile.judge.served_name
    painter = profile.painter
    fetch, prepare = docs["painter"]["spec"]["template"]["spec"]["initContainers"]
    assert fetch["args"] == [f"--variant={painter.variant}"] * bool(painter.variant) + [painter.model]
    options = dict(arg.removeprefix("--").split("=", 1) for arg in prepare["args"])
    parameters = json.loads(options["parameters"])["painter"]
    assert parameters == {
        "model": painter.model, "steps": str(painter.steps), "width": str(painter.width),
        "height": str(painter.height), "scheduler": painter.scheduler, "dtype": painter.dtype,
        "variant": painter.variant,
        "guidance_scale": str(int(painter.guidance_scale) if painter.guidance_scale.is_integer() else painter.guidance_scale),
    }  # fmt: skip


def test_models_values_override_the_profile():
    overridden = render({"models": {"storyteller": {"model": "my-org/storyteller-14b", "maxModelLen": 4096,
                                                    "gpuMemoryUtilization": 0.8}}})  # fmt: skip
    args = container(workloads(overridden)["storyteller"])["args"]
    assert "--model=my-org/storyteller-14b" in args and "--max-model-len=4096" in args
    assert "--gpu-memory-utilization=0.8" in args
    scaled = render({"engines": {"judge": {**VALUES["engines"]["judge"], "gpuMemoryUtilization": 0.7}}})
    assert "--gpu-memory-utilization=0.7" in container(workloads(scaled)["judge"])["args"]


def test_lora_adapters_are_served_and_offered_as_engines():
    docs = render(
        {"models": {"storyteller": {"loraAdapters": [{"name": "mini", "source": "acme/mini-lora"}]}}}
    )
    vllm = workloads(docs)["storyteller"]
    args = container(vllm)["args"]
    assert "--enable-lora" in args and args[args.index("--lora-modules") + 1] == "mini=acme/mini-lora"
    (fetch,) = vllm["spec"]["template"]["spec"]["initContainers"]
    assert fetch["args"] == [load_profile("gpu-80gb").storyteller.model, "acme/mini-lora"]
    engines = json.loads(env(workloads(docs)["story"])["STORYTELLING_STORY_ENGINES"])
    assert (
        engines["mini"]["model"] == "mini"
        and engines["mini"]["base_url"]
        == engines[load_profile("gpu-80gb").storyteller.served_name]["base_url"]
    )


def test_the_offline_storyteller_loads_the_profiles_adapter_from_the_story_image():
    """The embedded Mini-Storyteller of the offline profile: the story service resolves builtin:NAME from
    the package in its image, as the local stack's story service does."""
    story = env(workloads(render({"profile": "offline"}))["story"])
    engines = json.loads(story["STORYTELLING_STORY_ENGINES"])
    assert engines == {
        "embedded": {"kind": "embedded", "adapter": load_profile("offline").storyteller.adapter}
    }
    assert story["STORYTELLING_STORY_DEFAULT_MODE"] == load_profile("offline").storyteller.mode


def test_weights_are_fetched_with_the_hf_token_or_read_from_a_claim():
    docs = render(VALUE_SETS["gpu-cluster-24gb"])
    painter = workloads(docs)["painter"]["spec"]["template"]["spec"]
    fetch, prepare = painter["initContainers"]
    assert fetch["command"][:3] == ["python3", "-m", "storytelling.stack.fetch"]
    assert fetch["args"] == ["--variant=fp16", "stabilityai/stable-diffusion-xl-base-1.0"]
    token = {e["name"]: e for e in fetch["env"]}["HF_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token == {"name": "hf-token", "key": "HF_TOKEN", "optional": True}
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in painter["volumes"]}
    assert claims["models"] == f"{PREFIX}-models"
    assert f"{PREFIX}-models" in objects(docs, "PersistentVolumeClaim")
    engine_env = {e["name"]: e.get("value") for e in painter["containers"][0]["env"]}
    assert engine_env["HF_HUB_OFFLINE"] == "1", "the engine never downloads at start-up"

    pvc = render(VALUE_SETS["models-on-a-pvc"])
    for component in ENGINE_COMPONENTS:
        spec = workloads(pvc)[component]["spec"]["template"]["spec"]
        assert "fetch-models" not in [c["name"] for c in spec.get("initContainers", [])]
        volume = {v["name"]: v for v in spec["volumes"]}["models"]
        assert volume["persistentVolumeClaim"] == {"claimName": "weights", "readOnly": True}
    assert not objects(pvc, "PersistentVolumeClaim")


def test_triton_gets_the_repository_with_the_profiles_parameters(tmp_path):
    """The prepare-repository init container's arguments really prepare a repository (run here)."""
    from storytelling.stack.triton import main as triton_main

    for name in ("defaults", "gpu-cluster-80gb", "cpu-engines"):
        painter = workloads(render(VALUE_SETS[name]))["painter"]["spec"]["template"]["spec"]
        prepare = painter["initContainers"][-1]
        assert prepare["command"][-3:] == ["-m", "storytelling.stack.triton", "prepare"]
        options = dict(arg.removeprefix("--").split("=", 1) for arg in prepare["args"])
        assert options["source"] == "/opt/storytelling/model_repository"  # where the painter image puts it
        target = tmp_path / name
        source = ROOT / "deploy" / "triton" / "model_repository"
        assert (
            triton_main(
                [
                    "prepare",
                    f"--source={source}",
                    f"--target={target}",
                    f"--parameters={options['parameters']}",
                ]
            )
            == 0
        )
        parameters = json.loads(options["parameters"])
        config = (target / "painter" / "config.pbtxt").read_text()
        assert f'string_value: "{parameters["painter"]["model"]}"' in config
        server = painter["containers"][0]
        assert f"--model-repository={options['target']}" in server["args"]
        assert {"--load-model=painter", "--load-model=painter_stream"} <= set(server["args"])


def test_external_engines_are_used_with_keys_from_secrets():
    docs = render(VALUE_SETS["external-engines"])
    story = workloads(docs)["story"]
    (engine,) = json.loads(env(story)["STORYTELLING_STORY_ENGINES"]).values()
    assert engine == {"kind": "openai", "base_url": "https://api.openai.com/v1", "model": "gpt-4.1",
                      "api_key_env": "STORYTELLING_REMOTE_STORYTELLER_KEY", "timeout_s": 300}  # fmt: skip
    assert secret_env(story)["STORYTELLING_REMOTE_STORYTELLER_KEY"] == {
        "name": "openai",
        "key": "api-key",
        "optional": False,
    }
    render_env = env(workloads(docs)["render"])
    assert render_env["STORYTELLING_RENDER_DEFAULT_PAINTER"] == "openai"
    assert "STORYTELLING_RENDER_OPENAI_API_KEY" in secret_env(workloads(docs)["render"])
    assert "STORYTELLING_REMOTE_JUDGE_KEY" in secret_env(workloads(docs)["evaluation"])


def test_tls_and_tokens_come_from_secrets():
    docs = render(VALUE_SETS["tls-and-tokens"])

    def mounts_of(workload: dict) -> dict[str, str]:
        return {m["name"]: m["mountPath"] for m in container(workload)["volumeMounts"]}

    def secrets_of(workload: dict) -> dict[str, str]:
        volumes = workload["spec"]["template"]["spec"]["volumes"]
        return {v["name"]: v["secret"]["secretName"] for v in volumes if "secret" in v}

    orchestrator = workloads(docs)["orchestrator"]
    variables, mounts = env(orchestrator), mounts_of(orchestrator)
    assert secrets_of(orchestrator) == {"tls": "api-tls", "tokens": "api-tokens", "client-tls": "orchestrator-tls",
                                        "service-token": "orchestrator-token"}  # fmt: skip
    for field, file in (
        ("TLS_CERT_FILE", "tls.crt"),
        ("TLS_KEY_FILE", "tls.key"),
        ("TLS_CLIENT_CA_FILE", "ca.crt"),
    ):
        assert variables[f"STORYTELLING_ORCHESTRATOR_{field}"] == f"{mounts['tls']}/{file}"
    for field, file in (("TLS_CA_FILE", "ca.crt"), ("TLS_CERT_FILE", "tls.crt"), ("TLS_KEY_FILE", "tls.key")):
        assert variables[f"STORYTELLING_ORCHESTRATOR_DOWNSTREAM_{field}"] == f"{mounts['client-tls']}/{file}"
    assert variables["STORYTELLING_ORCHESTRATOR_DOWNSTREAM_TOKEN_FILE"] == f"{mounts['service-token']}/token"
    assert variables["STORYTELLING_ORCHESTRATOR_AUTH_TOKENS_FILE"] == mounts["tokens"]
    assert json.loads(variables["STORYTELLING_ORCHESTRATOR_TLS_CLIENT_IDENTITIES"]) == ["ci.example.org"]
    assert variables["STORYTELLING_ORCHESTRATOR_HEALTH_PORT"] == "50060"
    for component in ("story", "render", "evaluation"):
        service = workloads(docs)[component]
        variables, mounts, prefix = env(service), mounts_of(service), f"STORYTELLING_{component.upper()}_"
        assert secrets_of(service) == {"tls": f"{component}-tls", "tokens": "service-tokens"}
        assert variables[prefix + "TLS_CLIENT_CA_FILE"] == f"{mounts['tls']}/ca.crt"
        assert json.loads(variables[prefix + "TLS_CLIENT_IDENTITIES"]) == [
            f"{PREFIX}-orchestrator.{NAMESPACE}.svc"
        ]
        assert variables[prefix + "AUTH_TOKENS_FILE"] == mounts["tokens"]


# NetworkPolicies: who may reach whom, computed from the rendered policies.

OUTSIDE = Pod("client", "elsewhere", {"app": "client"})
PROMETHEUS = Pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})


def reachability(docs: list[dict]) -> set[tuple[str, str, int]]:
    pods = release_pods(docs)
    policies = list(objects(docs, "NetworkPolicy").values())
    sources = {**pods, "outside": OUTSIDE, "prometheus": PROMETHEUS}
    edges = set()
    for source_name, source in sources.items():
        for target_name, target in pods.items():
            for port in sorted(set(target.ports.values())):
                if source_name != target_name and allowed(policies, source, target, port):
                    edges.add((source_name, target_name, port))
    return edges


def test_network_policies_allow_only_the_pipeline_and_monitoring():
    components = ("orchestrator", "story", "render", "evaluation", "storyteller", "judge", "painter")
    metrics = {("prometheus", "orchestrator", 9100), ("prometheus", "story", 9101), ("prometheus", "render", 9102),
               ("prometheus", "evaluation", 9103), ("prometheus", "storyteller", 8000), ("prometheus", "judge", 8000),
               ("prometheus", "painter", 8002)}  # fmt: skip
    pipeline = {("orchestrator", "story", 50051), ("orchestrator", "render", 50052), ("orchestrator", "evaluation", 50053),
                ("story", "storyteller", 8000), ("evaluation", "storyteller", 8000), ("evaluation", "judge", 8000),
                ("render", "painter", 8001)}  # fmt: skip
    # The API is open to everyone outside (it checks tokens), and, without egress rules, to the release's pods.
    outside_api = {("outside", "orchestrator", 50050), ("prometheus", "orchestrator", 50050)}
    inside_api = {(c, "orchestrator", 50050) for c in components if c != "orchestrator"}
    assert reachability(render()) == pipeline | metrics | outside_api | inside_api
    # With egress rules each pod may open connections only to its next hop.
    assert (
        reachability(render({"networkPolicy": {"egress": {"enabled": True}}}))
        == pipeline | metrics | outside_api
    )
    restricted = render(
        {"networkPolicy": {"apiFrom": [{"namespaceSelector": {"matchLabels": {"team": "research"}}}]}}
    )
    assert ("outside", "orchestrator", 50050) not in reachability(restricted)
    notebook = Pod("notebook", "research", {"app": "notebook"}, extra_namespace_labels={"team": "research"})
    policies = list(objects(restricted, "NetworkPolicy").values())
    assert allowed(policies, notebook, release_pods(restricted)["orchestrator"], 50050)
    assert not allowed(policies, notebook, release_pods(restricted)["story"], 50051)


# Custom resources, checked field by field.


def test_service_monitors_point_at_real_metrics_ports():
    docs = render(VALUE_SETS["autoscaling-keda"])
    services = objects(docs, "Service")
    monitors = objects(docs, "ServiceMonitor")
    assert {m["metadata"]["labels"]["app.kubernetes.io/component"] for m in monitors.values()} == {
        *SERVICE_COMPONENTS,
        *ENGINE_COMPONENTS,
    }
    for monitor in monitors.values():
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        spec = monitor["spec"]
        assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        selected = [
            s
            for s in services.values()
            if all(s["metadata"]["labels"].get(k) == v for k, v in spec["selector"]["matchLabels"].items())
        ]
        assert selected, monitor["metadata"]["name"]
        (endpoint,) = spec["endpoints"]
        assert endpoint["path"] == "/metrics" and endpoint["interval"] == "15s"
        assert any(endpoint["port"] in {p["name"] for p in s["spec"]["ports"]} for s in selected)


def test_keda_scales_vllm_on_waiting_requests_and_triton_on_queue_time_never_to_zero():
    docs = render(VALUE_SETS["autoscaling-keda"])
    scaled = objects(docs, "ScaledObject")
    deployments = objects(docs, "Deployment")
    assert set(scaled) == {f"{PREFIX}-{c}" for c in ENGINE_COMPONENTS}
    for name, item in scaled.items():
        assert item["apiVersion"] == "keda.sh/v1alpha1"
        spec = item["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert "replicas" not in deployments[name]["spec"], "the autoscaler owns replicas"
        assert spec["minReplicaCount"] >= 1 and spec["maxReplicaCount"] >= spec["minReplicaCount"]
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 600
        assert behavior["scaleUp"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 600}]
        (trigger,) = spec["triggers"]
        metadata = trigger["metadata"]
        assert trigger["type"] == "prometheus" and metadata["ignoreNullValues"] == "true"
        assert metadata["serverAddress"].startswith("http") and float(metadata["threshold"]) > 0
        assert f'service="{name}"' in metadata["query"] and f'namespace="{NAMESPACE}"' in metadata["query"]
        if name.endswith("painter"):
            assert "nv_inference_queue_duration_us" in metadata["query"] and trigger["metricType"] == "Value"
        else:
            assert (
                "vllm:num_requests_waiting" in metadata["query"] and trigger["metricType"] == "AverageValue"
            )
    without = render(VALUE_SETS["autoscaling-off"])
    assert not objects(without, "ScaledObject") and not objects(without, "HorizontalPodAutoscaler")
    assert all("replicas" in d["spec"] for d in objects(without, "Deployment").values())


def test_hpa_scaling_uses_external_metrics_with_the_same_floor():
    hpas = objects(render(VALUE_SETS["autoscaling-hpa"]), "HorizontalPodAutoscaler")
    assert len(hpas) == 3
    for hpa in hpas.values():
        assert hpa["spec"]["minReplicas"] >= 1
        (metric,) = hpa["spec"]["metrics"]
        assert metric["external"]["metric"]["name"] in (
            "storytelling_vllm_waiting_requests",
            "storytelling_triton_queue_time_ms",
        )


def test_the_prometheus_rule_and_dashboards_ship_the_generated_files():
    docs = render(VALUE_SETS["autoscaling-keda"])
    (rule,) = objects(docs, "PrometheusRule").values()
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    dashboards = {k: v for k, v in objects(docs, "ConfigMap").items() if "dashboard" in k}
    assert len(dashboards) == 3
    for config_map in dashboards.values():
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((file, text),) = config_map["data"].items()
        assert json.loads(text) == json.loads((CHART / "files" / "dashboards" / file).read_text())
    info = objects(docs, "ConfigMap")[f"{PREFIX}-cluster-info"]["data"]
    assert info["grafanaUrl"] == "https://grafana.example.org" and info["profile"] == "gpu-80gb"


# Values that must be refused, each with a message naming the field.

BAD_VALUES = sorted((Path(__file__).parent / "bad_values").glob("*.yaml"))


@pytest.mark.parametrize("path", BAD_VALUES, ids=[p.stem for p in BAD_VALUES])
def test_bad_values_are_refused_naming_the_field(path):
    text = path.read_text()
    expected = text.splitlines()[0].removeprefix("# refused: ").strip()
    with pytest.raises((helm_python.HelmValuesError, helm_python.HelmRenderError)) as error:
        render(yaml.safe_load(text))
    assert expected in str(error.value), str(error.value)


def test_there_are_at_least_five_bad_values_files():
    assert len(BAD_VALUES) >= 5


# Profiles: the chart takes the product's profile files (deploy/profiles), by the same names.


def test_the_chart_renders_every_profile_file_by_its_name():
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert (CHART / "profiles").resolve() == ROOT / "deploy" / "profiles"
    assert set(schema["properties"]["profile"]["enum"]) == set(profile_names())
    engines = {"offline": set(), "remote": set(), "cpu-engines": {"storyteller", "painter"},
               "gpu-24gb": {"storyteller", "painter"}, "gpu-80gb": set(ENGINE_COMPONENTS)}  # fmt: skip
    for name in profile_names():
        docs = render(
            {"profile": name, **({"remote": example("remote")["remote"]} if name == "remote" else {})}
        )
        assert set(workloads(docs)) == {*SERVICE_COMPONENTS, *engines[name]}, name
    with pytest.raises(helm_python.HelmValuesError, match="profile"):
        render({"profile": "gpu-48gb"})


def test_the_vllm_image_is_the_release_our_cpu_tests_run():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    pinned = (ROOT / "requirements" / "vllm.txt").read_text()
    version = next(line.split("==")[1] for line in pinned.splitlines() if line.startswith("vllm-cpu=="))
    assert values["images"]["vllm"]["tag"] == values["images"]["vllmCpu"]["tag"] == f"v{version}"
