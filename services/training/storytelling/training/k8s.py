"""Training on a cluster: a Kubernetes Job built with the `kubernetes` client's models.

The Job runs `storytelling train ...` in the project image with GPUs requested through the device
plugin's resource (`nvidia.com/gpu`), and writes its run directory to a PersistentVolumeClaim. Resumption:
the pod's command is the same on every start, every stage resumes from its last checkpoint on the volume
and the recipe skips finished stages, so a pod that is evicted or crashes goes on where it stopped.
Disruptions (preemption, node drain) do not count against the Job's retries; a usage error (exit 2)
fails the Job at once. `storytelling train job` prints the manifests, validated against the Kubernetes
schemas; apply them with `kubectl apply -f`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s

CONTAINER = "trainer"
USAGE_ERROR = 2  # argparse's exit code: retrying cannot help
DEFAULT_KUBERNETES = "1.31"


@dataclass(frozen=True)
class JobOptions:
    name: str
    image: str
    # Arguments after `storytelling train`, e.g. ["recipe", "--run", "/outputs/run", "--base-model", "..."].
    args: list[str]
    namespace: str = "default"
    gpus: int = 1
    gpu_resource: str = "nvidia.com/gpu"
    cpu: str = "8"
    memory: str = "32Gi"
    claim: str = "mini-storytellers"
    mount_path: str = "/outputs"
    shm: str = "8Gi"
    backoff_limit: int = 6
    deadline_s: int | None = None
    # Environment from secrets, name -> (secret, key), e.g. {"HF_TOKEN": ("hf", "token")} for gated models.
    secret_env: dict[str, tuple[str, str]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)


def job(options: JobOptions) -> k8s.V1Job:
    labels = {"app.kubernetes.io/name": "mini-storyteller", "app.kubernetes.io/instance": options.name}
    resources = {"cpu": options.cpu, "memory": options.memory}
    if options.gpus:
        resources[options.gpu_resource] = str(options.gpus)
    # Converted models and hub downloads live on the volume too, so a restarted pod does not fetch again.
    env = [
        k8s.V1EnvVar(name="STORYTELLING_CACHE_DIR", value=f"{options.mount_path}/cache"),
        k8s.V1EnvVar(name="HF_HOME", value=f"{options.mount_path}/huggingface"),
    ]
    env += [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(options.env.items())]
    env += [
        k8s.V1EnvVar(
            name=name,
            value_from=k8s.V1EnvVarSource(secret_key_ref=k8s.V1SecretKeySelector(name=secret, key=key)),
        )
        for name, (secret, key) in sorted(options.secret_env.items())
    ]
    container = k8s.V1Container(
        name=CONTAINER,
        image=options.image,
        command=["storytelling", "train"],
        args=options.args,
        env=env,
        resources=k8s.V1ResourceRequirements(requests=resources, limits=resources),
        volume_mounts=[
            k8s.V1VolumeMount(name="outputs", mount_path=options.mount_path),
            k8s.V1VolumeMount(name="shm", mount_path="/dev/shm"),
        ],
    )
    tolerations = (
        [k8s.V1Toleration(key=options.gpu_resource, operator="Exists", effect="NoSchedule")]
        if options.gpus
        else None
    )
    pod = k8s.V1PodSpec(
        restart_policy="Never",  # a new pod per retry, so the failure policy sees each failure
        containers=[container],
        volumes=[
            k8s.V1Volume(
                name="outputs",
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=options.claim),
            ),
            # PyTorch data loading and NCCL need more shared memory than the container default of 64 MB.
            k8s.V1Volume(
                name="shm", empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit=options.shm)
            ),
        ],
        tolerations=tolerations,
        node_selector=options.node_selector or None,
        termination_grace_period_seconds=120,
    )
    failure_policy = k8s.V1PodFailurePolicy(
        rules=[
            k8s.V1PodFailurePolicyRule(
                action="Ignore",
                on_pod_conditions=[
                    k8s.V1PodFailurePolicyOnPodConditionsPattern(type="DisruptionTarget", status="True")
                ],
            ),
            k8s.V1PodFailurePolicyRule(
                action="FailJob",
                on_pod_conditions=[],  # required (even empty) by the schemas before Kubernetes 1.29
                on_exit_codes=k8s.V1PodFailurePolicyOnExitCodesRequirement(
                    container_name=CONTAINER, operator="In", values=[USAGE_ERROR]
                ),
            ),
        ]
    )
    return k8s.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=k8s.V1ObjectMeta(name=options.name, namespace=options.namespace, labels=labels),
        spec=k8s.V1JobSpec(
            backoff_limit=options.backoff_limit,
            active_deadline_seconds=options.deadline_s,
            pod_failure_policy=failure_policy,
            template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels), spec=pod),
        ),
    )


def output_claim(
    name: str, namespace: str, size: str, storage_class: str | None = None
) -> k8s.V1PersistentVolumeClaim:
    return k8s.V1PersistentVolumeClaim(
        api_version="v1",
        kind="PersistentVolumeClaim",
        metadata=k8s.V1ObjectMeta(name=name, namespace=namespace),
        spec=k8s.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"],
            resources=k8s.V1VolumeResourceRequirements(requests={"storage": size}),
            storage_class_name=storage_class,
        ),
    )


def manifest(obj: Any) -> dict[str, Any]:
    """The object as the API server receives it (camelCase keys, no nulls)."""
    return k8s.ApiClient().sanitize_for_serialization(obj)


def validate(documents: list[dict[str, Any]], version: str = DEFAULT_KUBERNETES) -> None:
    """Raises ValueError naming the object and field when a manifest breaks the schema (strict mode:
    unknown fields too)."""
    import kubernetes_validate

    for document in documents:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            raise ValueError(
                f"{document['kind']} {document['metadata']['name']}: {path}: {error.message}"
            ) from None


def add_parser(actions: argparse._SubParsersAction) -> None:
    from storytelling.training.cli import entry

    parser = actions.add_parser(
        "job", help="print a validated Kubernetes Job (and claim) that runs a training command on a cluster"
    )
    parser.add_argument("--name", required=True, help="Job name (also the run directory on the volume)")
    parser.add_argument("--image", required=True, help="image with the project installed (`storytelling`)")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--gpu-resource", default="nvidia.com/gpu")
    parser.add_argument("--cpu", default="8")
    parser.add_argument("--memory", default="32Gi")
    parser.add_argument("--claim", default="mini-storytellers", help="PersistentVolumeClaim for run outputs")
    parser.add_argument(
        "--create-claim", metavar="SIZE", help="also print the claim, of this size (e.g. 50Gi)"
    )
    parser.add_argument("--storage-class")
    parser.add_argument(
        "--hf-token-secret", metavar="SECRET", help="secret whose key `token` becomes HF_TOKEN"
    )
    parser.add_argument(
        "--kubernetes-version", default=DEFAULT_KUBERNETES, help="schemas to validate against"
    )
    parser.add_argument(
        "train_args", nargs=argparse.REMAINDER, help="after --: the `storytelling train` command"
    )
    parser.set_defaults(func=entry(job_command))


def job_command(args: argparse.Namespace) -> int:
    import yaml

    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    if not train_args:
        raise ValueError("train_args: give the training command after --, e.g. -- recipe --base-model ...")
    if "--run" not in train_args:
        train_args = [*train_args[:1], "--run", f"/outputs/{args.name}", *train_args[1:]]
    options = JobOptions(
        name=args.name,
        image=args.image,
        args=train_args,
        namespace=args.namespace,
        gpus=args.gpus,
        gpu_resource=args.gpu_resource,
        cpu=args.cpu,
        memory=args.memory,
        claim=args.claim,
        secret_env={"HF_TOKEN": (args.hf_token_secret, "token")} if args.hf_token_secret else {},
    )
    objects = [job(options)]
    if args.create_claim:
        objects.insert(0, output_claim(args.claim, args.namespace, args.create_claim, args.storage_class))
    documents = [manifest(o) for o in objects]
    validate(documents, args.kubernetes_version)
    yaml.safe_dump_all(documents, sys.stdout, sort_keys=False)
    return 0
