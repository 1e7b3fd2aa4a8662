"""The orchestrator's core: create, watch, get, list and cancel jobs, and run single items.

Transport-free: takes and returns protobuf messages and raises `storytelling.runtime.errors`. Every
call names its caller (`storytelling.runtime.auth.Principal`): a job is owned by the identity that
created it, and without the admin scope a caller sees and acts on its own jobs only. A job it may not
see, and a job that does not exist, give it the same PERMISSION_DENIED, so a status never says whether
someone else's job exists. Quotas are counted per owner.
"""

import asyncio
import base64
import binascii
import contextvars
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from storytelling.api.layout import JobFiles, UnsafePath, check_job_id
from storytelling.api.vocabulary import TERMINAL_JOB_STATES
from storytelling.runtime.auth import ANONYMOUS, Principal
from storytelling.runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from storytelling.v1 import pipeline_pb2

from .events import Notifier
from .metrics import PipelineMetrics
from .policy import PipelinePolicy
from .quotas import Quotas
from .runner import Gallery, JobRunner, now
from .seeds import derive_seed, random_seed
from .stages import Stages
from .store import Store
from .validation import validate_spec

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000


class JobManager:
    def __init__(
        self,
        store: Store,
        stages: Stages,
        *,
        data_dir: Path,
        policy: PipelinePolicy,
        max_items: int,
        max_running_jobs: int,
        gallery: Gallery | None = None,
        quotas: Quotas | None = None,
        metrics: PipelineMetrics | None = None,
    ):
        self._store, self._stages, self._policy = store, stages, policy
        self.metrics = metrics
        self._jobs_dir = data_dir / "jobs"
        self._scratch_dir = data_dir / "scratch"
        self._max_items, self._gallery = max_items, gallery
        self._limits = policy.limits()
        self._slots = asyncio.Semaphore(max_running_jobs)
        self._notifier = Notifier()
        self._running: dict[str, tuple[JobRunner, asyncio.Task[None]]] = {}
        self.quotas = quotas or Quotas()

    @property
    def running_jobs(self) -> int:
        return len(self._running)

    async def start(self) -> None:
        """Re-queues every job that had not ended when the orchestrator last stopped."""
        for job in self._store.unfinished_jobs():
            logger.info("resuming job %s", job.id)
            self.quotas.resume(job.owner)
            self._launch(job, self._store.items(job.id))

    async def stop(self) -> None:
        """Stops the runners without ending their jobs, which resume at the next start."""
        tasks = [task for _, task in self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def create(
        self, spec: pipeline_pb2.JobSpec, request_id: str = "", caller: Principal = ANONYMOUS
    ) -> pipeline_pb2.Job:
        validate_spec(spec, self._max_items)
        if request_id and (existing := self._by_request(request_id, spec, caller)):
            return existing
        await self._validate_choices(spec)
        # Checked again: a create with the same key may have finished while we awaited the services.
        if request_id and (existing := self._by_request(request_id, spec, caller)):
            return existing
        self.quotas.admit(caller.identity, spec.items)  # released when the job's task ends
        try:
            seed = spec.seed if spec.HasField("seed") else random_seed()
            job = pipeline_pb2.Job(
                id=uuid.uuid4().hex,
                spec=spec,
                state=pipeline_pb2.JOB_STATE_QUEUED,
                seed=seed,
                created_at=now(),
                updated_at=now(),
                owner=caller.identity,
            )
            job.directory = str(self._jobs_dir / job.id)
            items = [_new_item(seed, index) for index in range(spec.items)]
            events = [pipeline_pb2.JobEvent(job_state=job.state)]
            events += [pipeline_pb2.JobEvent(item=item) for item in items]
            self._store.create(job, items, request_id, events)
            await asyncio.to_thread(JobFiles(Path(job.directory)).write_job, job)
        except BaseException:
            self.quotas.release(caller.identity)
            raise
        self._launch(job, items)
        return job

    def get(self, job_id: str, caller: Principal = ANONYMOUS) -> pipeline_pb2.Job:
        job = self._job(job_id, caller)
        job.items.extend(self._store.items(job_id))
        return job

    def list_jobs(
        self,
        page_size: int = 0,
        page_token: str = "",
        states: Sequence[int] = (),
        caller: Principal = ANONYMOUS,
    ) -> tuple[list[pipeline_pb2.Job], str]:
        """Jobs newest first; only the caller's own unless it has the admin scope."""
        if page_size < 0:
            raise InvalidArgument(f"must be >= 0, got {page_size}", field="page_size")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        owner = None if caller.sees_every_job else caller.identity
        before = _decode_token(page_token) if page_token else None
        rows = self._store.list_jobs(states, before, size + 1, owner)
        next_token = _encode_token(rows[size - 1][0]) if len(rows) > size else ""
        return [job for _, job in rows[:size]], next_token

    async def cancel(self, job_id: str, caller: Principal = ANONYMOUS) -> pipeline_pb2.Job:
        job = self._job(job_id, caller)
        if job.state in TERMINAL_JOB_STATES:
            state = pipeline_pb2.JobState.Name(job.state)
            raise FailedPrecondition(f"job {job_id} has already ended ({state})", field="job_id")
        if job_id not in self._running:
            raise Unavailable(f"job {job_id} is being resumed; try again in a moment")
        runner, task = self._running[job_id]
        task.cancel()
        await asyncio.wait([task])
        if runner.job.state not in TERMINAL_JOB_STATES:  # a concurrent CancelJob may have ended it already
            runner.end(pipeline_pb2.JOB_STATE_CANCELLED)
        return self.get(job_id, caller)

    async def watch(
        self, job_id: str, after_sequence: int = 0, caller: Principal = ANONYMOUS
    ) -> AsyncIterator[pipeline_pb2.JobEvent]:
        """The job's events after `after_sequence`, then new ones as they happen, until the job ends.

        The log starts with the job's state and every item as created, so a replay from 0 is a snapshot
        followed by every change; sequences are contiguous, so a watcher can resume where it stopped.
        """
        if after_sequence < 0:
            raise InvalidArgument(f"must be >= 0, got {after_sequence}", field="after_sequence")
        self._job(job_id, caller)
        while True:
            events = self._store.events(job_id, after_sequence)
            if not events:
                if self._job(job_id).state in TERMINAL_JOB_STATES:
                    return
                await self._notifier.wait(job_id)
                continue
            for event in events:
                yield event
                if event.HasField("finished"):
                    return
            after_sequence = events[-1].sequence

    async def run_item(self, spec: pipeline_pb2.JobSpec, caller: Principal = ANONYMOUS) -> pipeline_pb2.Item:
        """Runs item 0 of `spec` through every stage, keeping nothing; the image keeps its bytes. It
        counts as a running job of the caller while it runs, and as one item of its hourly quota."""
        validate_spec(spec, max_items=None)
        await self._validate_choices(spec)
        self.quotas.admit(caller.identity, 1)
        try:
            return await self._run_item(spec)
        finally:
            self.quotas.release(caller.identity)

    async def _run_item(self, spec: pipeline_pb2.JobSpec) -> pipeline_pb2.Item:
        seed = spec.seed if spec.HasField("seed") else random_seed()
        self._scratch_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._scratch_dir) as directory:
            files = JobFiles(Path(directory))
            job = pipeline_pb2.Job(id="run-item", spec=spec, seed=seed, directory=directory)
            runner = JobRunner(
                job,
                [_new_item(seed, 0)],
                stages=self._stages,
                policy=self._policy,
                limits=self._limits,
                files=files,
                record=lambda *change: None,
                summarize_set=False,
            )
            await runner.run()
            if runner.job.state == pipeline_pb2.JOB_STATE_FAILED:
                raise Internal(f"the item could not run: {runner.job.error}")
            item = runner.items[0]
            if item.HasField("image"):
                item.image.data = files.image_path(0, item.image.format).read_bytes()
        item.ClearField("artifacts")
        return item

    def _launch(self, job: pipeline_pb2.Job, items: list[pipeline_pb2.Item]) -> None:
        runner = JobRunner(
            job,
            items,
            stages=self._stages,
            policy=self._policy,
            limits=self._limits,
            files=JobFiles(Path(job.directory)),
            record=self._record,
            gallery=self._gallery,
            metrics=self.metrics.job() if self.metrics is not None else None,
        )
        # A fresh context: the job must not inherit the deadline of the CreateJob call that started it.
        task = asyncio.create_task(
            runner.run(self._slots), name=f"job-{job.id}", context=contextvars.Context()
        )
        self._running[job.id] = (runner, task)

        def ended(_: asyncio.Task[None]) -> None:
            self._running.pop(job.id, None)
            self.quotas.release(job.owner)

        task.add_done_callback(ended)

    def _record(
        self,
        job: pipeline_pb2.Job,
        items: Sequence[pipeline_pb2.Item],
        events: Sequence[pipeline_pb2.JobEvent],
    ) -> None:
        self._store.commit(job, items, events)
        self._notifier.notify(job.id)

    async def _validate_choices(self, spec: pipeline_pb2.JobSpec) -> None:
        """Asks the services whether they know the spec's painter, engine...; a service that cannot be
        reached does not block the job: its items retry, and fail naming the choice if it is unknown."""
        try:
            await self._stages.validate(spec)
        except Unavailable as error:
            logger.warning("could not check the job's choices: %s", error)

    def _by_request(
        self, request_id: str, spec: pipeline_pb2.JobSpec, caller: Principal
    ) -> pipeline_pb2.Job | None:
        """The caller's job created with this idempotency key (keys belong to their identity)."""
        job_id = self._store.job_id_for_request(caller.identity, request_id)
        if job_id is None:
            return None
        job = self._job(job_id, caller)
        if job.spec != spec:
            raise AlreadyExists(f"already used by job {job_id} with a different spec", field="request_id")
        return job

    def _job(self, job_id: str, caller: Principal = ANONYMOUS) -> pipeline_pb2.Job:
        if not job_id:
            raise InvalidArgument("required", field="job_id")
        try:
            check_job_id(job_id)
        except UnsafePath as error:
            raise InvalidArgument(str(error), field="job_id") from None
        job = self._store.job(job_id)
        if job is not None and caller.may_access(job.owner):
            return job
        if caller.sees_every_job:
            raise NotFound(f"no job {job_id!r}", field="job_id")
        raise PermissionDenied(
            f"no job {job_id!r} that identity {caller.identity!r} may access", field="job_id"
        )


def _new_item(job_seed: int, index: int) -> pipeline_pb2.Item:
    return pipeline_pb2.Item(
        index=index,
        state=pipeline_pb2.ITEM_STATE_PENDING,
        story_seed=derive_seed(job_seed, index, "story"),
        image_seed=derive_seed(job_seed, index, "image"),
    )


def _encode_token(position: int) -> str:
    return base64.urlsafe_b64encode(f"before:{position}".encode()).decode()


def _decode_token(token: str) -> int:
    try:
        prefix, position = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if prefix == "before":
            return int(position)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidArgument("not a token from a previous ListJobs response", field="page_token")
