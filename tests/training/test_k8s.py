"""The training Job as the cluster receives it, validated against the Kubernetes schemas (strict)."""

import io
from contextlib import redirect_stdout

import pytest
import yaml
from storytelling.cli.main import main
from storytelling.training.k8s import JobOptions, job, manifest, output_claim, validate

OPTIONS = JobOptions(
    name="mini-qwen",
    image="registry.example/storytelling:1.0",
    args=["recipe", "--run", "/outputs/mini-qwen", "--base-model", "Qwen/Qwen2.5-1.5B-Instruct"],
    gpus=2,
    secret_env={"HF_TOKEN": ("hf", "token")},
)


@pytest.mark.parametrize("version", ["1.26", "1.28", "1.31", "1.37"])
def test_the_job_and_claim_validate_strictly(version):
    validate(
        [manifest(job(OPTIONS)), manifest(output_claim("mini-storytellers", "default", "50Gi"))], version
    )


def test_the_job_requests_gpus_mounts_the_claim_and_resumes():
    spec = manifest(job(OPTIONS))["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["storytelling", "train"] and container["args"] == OPTIONS.args
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert pod["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["outputs"]["persistentVolumeClaim"] == {"claimName": "mini-storytellers"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"outputs": "/outputs", "shm": "/dev/shm"}
    env = {e["name"]: e for e in container["env"]}
    # Caches on the volume: a restarted pod neither converts nor downloads again.
    assert env["STORYTELLING_CACHE_DIR"]["value"] == "/outputs/cache"
    assert env["HF_HOME"]["value"] == "/outputs/huggingface"
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"key": "token", "name": "hf"}}
    assert "HF_HUB_OFFLINE" not in env
    # Retries start the same command on the same run directory, which resumes from its last checkpoint;
    # evictions do not use up retries, usage errors end the Job.
    assert pod["restartPolicy"] == "Never" and spec["backoffLimit"] == 6
    ignore, fail = spec["podFailurePolicy"]["rules"]
    assert ignore == {"action": "Ignore", "onPodConditions": [{"status": "True", "type": "DisruptionTarget"}]}
    assert fail["action"] == "FailJob" and fail["onExitCodes"]["values"] == [2]


def test_a_cpu_job_requests_no_gpu():
    pod = manifest(job(JobOptions(name="cpu", image="i", args=["sft"], gpus=0)))["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"] and "tolerations" not in pod


def test_a_broken_manifest_is_refused_naming_the_field():
    document = manifest(job(OPTIONS))
    document["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(ValueError, match="^Job mini-qwen: .*resource"):
        validate([document])
    document = manifest(job(OPTIONS))
    document["spec"]["backoffLimit"] = "six"
    with pytest.raises(ValueError, match="^Job mini-qwen: spec.backoffLimit: 'six' is not of type 'integer'"):
        validate([document])


def test_the_cli_prints_validated_manifests_with_the_run_on_the_volume():
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(
            ["train", "job", "--name", "mini-a", "--image", "img:1", "--create-claim", "20Gi"]
            + ["--hf-token-secret", "hf", "--", "recipe", "--base-model", "Qwen/Qwen2.5-0.5B-Instruct"]
        )
    assert code == 0
    claim, job_doc = yaml.safe_load_all(out.getvalue())
    assert (
        claim["kind"] == "PersistentVolumeClaim"
        and claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    )
    args = job_doc["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["recipe", "--run", "/outputs/mini-a", "--base-model", "Qwen/Qwen2.5-0.5B-Instruct"]
    validate([claim, job_doc])


def test_the_cli_needs_a_training_command(capsys):
    assert main(["train", "job", "--name", "x", "--image", "i"]) == 1
    assert "train_args: give the training command after --" in capsys.readouterr().err
