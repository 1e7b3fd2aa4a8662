"""The orchestrator's core: create, watch, get, list and cancel jobs, page through items, run single items.

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
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from storytelling.api.layout import JobFiles, UnsafePath, check_job_id
from storytelling.api.vocabulary import STAGE_SERVICES, TERMINAL_JOB_STATES
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

from .events import DEFAULT_BACKLOG, Feeds
from .gate import ServiceGate, WaitPolicy
from .journal import Journal, counts_of, now
from .metrics import PipelineMetrics
from .policy import PipelinePolicy
from .quotas import Quotas
from .runner import Gallery, JobRunner, new_item
from .seeds import random_seed
from .stages import Stages
from .store import Store
from .validation import validate_spec

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000
DEFAULT_ITEM_PAGE_SIZE = 100
# Items a watch reads from the store at a time while it catches up.
CATCH_UP_PAGE = 500


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
        wait: WaitPolicy | None = None,
        max_items_per_get: int = 10_000,
        watch_backlog: int = DEFAULT_BACKLOG,
        gallery: Gallery | None = None,
        quotas: Quotas | None = None,
        metrics: PipelineMetrics | None = None,
    ):
        self._store, self._stages, self._policy = store, stages, policy
        self.metrics = metrics
        self.quotas = quotas or Quotas()
        self._jobs_dir = data_dir / "jobs"
        self._scratch_dir = data_dir / "scratch"
        self._max_items, self._max_items_per_get, self._gallery = max_items, max_items_per_get, gallery
        self._limits = policy.limits()
        wait = wait or WaitPolicy()
        # One gate per downstream service, shared by every job: an outage is the service's, not a job's.
        self._gates = {stage: ServiceGate(service, wait) for stage, service in STAGE_SERVICES.items()}
        self._slots = asyncio.Semaphore(max_running_jobs)
        self._feeds = Feeds(watch_backlog)
        self._running: dict[str, tuple[JobRunner, asyncio.Task[None]]] = {}
        # Creates with the same idempotency key (per owner) make their job one at a time.
        self._creating: dict[tuple[str, str], asyncio.Lock] = {}

    @property
    def running_jobs(self) -> int:
        return len(self._running)

    async def start(self) -> None:
        """Re-queues every job that had not ended when the orchestrator last stopped."""
        for job, sequence in await self._store.unfinished_jobs():
            logger.info("resuming job %s", job.id)
            self.quotas.resume(job.owner)
            self._launch(job, sequence, resumed=True)

    async def stop(self) -> None:
        """Stops the runners without ending their jobs, which resume at the next start."""
        tasks = [task for _, task in self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job_id in list(self._running):
            self._forget(job_id)
        await self._store.flush()

    async def create(
        self, spec: pipeline_pb2.JobSpec, request_id: str = "", caller: Principal = ANONYMOUS
    ) -> pipeline_pb2.Job:
        validate_spec(spec, self._max_items)
        if request_id and (existing := await self._by_request(request_id, spec, caller)):
            return existing
        await self._validate_choices(spec)
        if not request_id:
            return await self._create(spec, request_id, caller)
        # Creates with the same key make their job one at a time (their validations ran together), so
        # the second finds the job of the first instead of a second one.
        key = (caller.identity, request_id)
        lock = self._creating.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                if existing := await self._by_request(request_id, spec, caller):
                    return existing
                return await self._create(spec, request_id, caller)
        finally:
            if not lock.locked() and self._creating.get(key) is lock:
                del self._creating[key]

    async def _create(
        self, spec: pipeline_pb2.JobSpec, request_id: str, caller: Principal
    ) -> pipeline_pb2.Job:
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
            # job.json first: a job that could not be written is not stored either (stored, it would never
            # run, and a retry with the same request id would get it back).
            await asyncio.to_thread(JobFiles(Path(job.directory), fsync=False).write_job, job)
            await Journal(job.id, 0, self._store, self._feeds).created(job, request_id)
        except BaseException:
            self.quotas.release(caller.identity)
            raise
        self._launch(job, 1, resumed=False)
        return job

    async def get(
        self, job_id: str, caller: Principal = ANONYMOUS, *, omit_items: bool = False
    ) -> pipeline_pb2.Job:
        job, _ = await self._job(job_id, caller)
        if omit_items:
            return job
        if job.spec.items > self._max_items_per_get:
            raise FailedPrecondition(
                f"job {job_id} has {job.spec.items} items, more than GetJob returns at once "
                f"({self._max_items_per_get}); page through them with ListItems, or set omit_items",
                field="omit_items",
            )
        items, _ = await self._page(job, 0, job.spec.items, ())
        job.items.extend(items)
        return job

    async def list_items(
        self,
        job_id: str,
        page_size: int = 0,
        page_token: str = "",
        states: Sequence[int] = (),
        caller: Principal = ANONYMOUS,
        *,
        omit_results: bool = False,
    ) -> tuple[list[pipeline_pb2.Item], str]:
        if page_size < 0:
            raise InvalidArgument(f"must be >= 0, got {page_size}", field="page_size")
        job, _ = await self._job(job_id, caller)
        start = _decode_token(page_token, "from") if page_token else 0
        items, next_index = await self._page(
            job, start, min(page_size or DEFAULT_ITEM_PAGE_SIZE, MAX_PAGE_SIZE), states
        )
        if omit_results:
            items = [_without_results(item) for item in items]
        return items, _encode_token("from", next_index) if next_index is not None else ""

    async def list_jobs(
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
        before = _decode_token(page_token, "before") if page_token else None
        owner = None if caller.sees_every_job else caller.identity
        rows = await self._store.list_jobs(states, before, size + 1, owner)
        next_token = _encode_token("before", rows[size - 1][0]) if len(rows) > size else ""
        return [job for _, job in rows[:size]], next_token

    async def cancel(self, job_id: str, caller: Principal = ANONYMOUS) -> pipeline_pb2.Job:
        """Cancels a queued or running job. Concurrent cancels of one job all return it cancelled."""
        entry = self._running.get(job_id)  # looked up before any await: a concurrent cancel sees it too
        if entry is None:
            job, _ = await self._job(job_id, caller)
            if job.state in TERMINAL_JOB_STATES:
                raise self._ended(job)
            raise Unavailable(f"job {job_id} is being resumed; try again in a moment")
        runner, task = entry
        if not caller.may_access(runner.job.owner):
            raise _denied(job_id, caller)
        if runner.job.state in TERMINAL_JOB_STATES and runner.job.state != pipeline_pb2.JOB_STATE_CANCELLED:
            raise self._ended(runner.job)
        task.cancel()
        await asyncio.wait([task])
        # Ends the job, or waits for the end already under way (a concurrent CancelJob, or the job's own).
        await runner.end(pipeline_pb2.JOB_STATE_CANCELLED)
        self._forget(job_id)
        if runner.job.state != pipeline_pb2.JOB_STATE_CANCELLED:
            raise self._ended(runner.job)
        return await self.get(job_id, caller, omit_items=runner.job.spec.items > self._max_items_per_get)

    @staticmethod
    def _ended(job: pipeline_pb2.Job) -> FailedPrecondition:
        name = pipeline_pb2.JobState.Name(job.state)
        return FailedPrecondition(f"job {job.id} has already ended ({name})", field="job_id")

    async def watch(
        self,
        job_id: str,
        after_sequence: int = 0,
        caller: Principal = ANONYMOUS,
        *,
        omit_results: bool = False,
    ) -> AsyncIterator[pipeline_pb2.JobEvent]:
        """The items that changed after `after_sequence` (latest state only), a snapshot of the job, then
        live events until it ends. A watcher that falls too far behind catches up from the store again,
        so a slow watcher costs memory for its backlog only, and never holds back the job."""
        if after_sequence < 0:
            raise InvalidArgument(f"must be >= 0, got {after_sequence}", field="after_sequence")
        # Subscribed before anything is read, so no change published meanwhile is missed; the first read
        # checks the job exists and the caller may see it.
        subscription = self._feeds.subscribe(job_id)
        try:
            delivered = after_sequence
            while True:
                subscription.overflowed = False  # everything after this is buffered or read below
                job, sequence = await self._job(job_id, caller)
                counts = counts_of(job)
                async for event in self._catch_up(job_id, delivered, sequence, omit_results, counts):
                    yield event
                delivered = max(delivered, sequence)
                if job.state in TERMINAL_JOB_STATES:
                    yield pipeline_pb2.JobEvent(
                        sequence=sequence,
                        job_id=job_id,
                        time=job.updated_at,
                        finished=job,
                        counts=counts,
                    )
                    return
                yield pipeline_pb2.JobEvent(
                    sequence=sequence, job_id=job_id, time=now(), snapshot=job, counts=counts
                )
                for event in self._feeds.of(job_id).progress_events():
                    yield event
                while not subscription.overflowed:
                    events, progress = await subscription.next()
                    if subscription.overflowed:
                        break
                    for event in events:
                        if event.sequence <= delivered:
                            continue  # also read from the store while catching up
                        delivered = event.sequence
                        yield _without_results_event(event) if omit_results else event
                        if event.HasField("finished"):
                            return
                    for event in progress:
                        yield event
        finally:
            self._feeds.unsubscribe(job_id, subscription)

    async def _catch_up(
        self, job_id: str, after: int, up_to: int, omit_results: bool, counts: pipeline_pb2.JobCounts
    ) -> AsyncIterator[pipeline_pb2.JobEvent]:
        """The items changed in (after, up_to], each in its latest state, with the job's counters as of
        `up_to` (the store keeps no counters per change)."""
        while after < up_to:
            changed = await self._store.items_changed(job_id, after, up_to, CATCH_UP_PAGE)
            for sequence, item in changed:
                yield pipeline_pb2.JobEvent(
                    sequence=sequence,
                    job_id=job_id,
                    item=_without_results(item) if omit_results else item,
                    counts=counts,
                )
            if len(changed) < CATCH_UP_PAGE:
                return
            after = changed[-1][0]

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
        one = pipeline_pb2.JobSpec()
        one.CopyFrom(spec)
        one.items = 1
        await asyncio.to_thread(self._scratch_dir.mkdir, parents=True, exist_ok=True)
        directory = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=self._scratch_dir))
        try:
            files = JobFiles(directory, fsync=False)
            job = pipeline_pb2.Job(id="run-item", spec=one, seed=seed, directory=str(directory))
            runner = JobRunner(
                job,
                stages=self._stages,
                policy=self._policy,
                limits=self._limits,
                gates=self._gates,
                files=files,
                journal=Journal(job.id, 0, None, None),
                summarize_set=False,
                keep_items=True,
            )
            await runner.run()
            if runner.job.state == pipeline_pb2.JOB_STATE_FAILED:
                raise Internal(f"the item could not run: {runner.job.error}")
            item = (runner.ended or [new_item(seed, 0)])[0]
            if item.HasField("image"):
                path = files.image_path(0, item.image.format)
                item.image.data = await asyncio.to_thread(path.read_bytes)
        finally:
            await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)
        item.ClearField("artifacts")
        return item

    def _launch(self, job: pipeline_pb2.Job, sequence: int, *, resumed: bool) -> None:
        self._feeds.running(job.id)
        runner = JobRunner(
            job,
            stages=self._stages,
            policy=self._policy,
            limits=self._limits,
            gates=self._gates,
            files=JobFiles(Path(job.directory), fsync=False),
            journal=Journal(job.id, sequence, self._store, self._feeds),
            store=self._store,
            resumed=resumed,
            gallery=self._gallery,
            metrics=self.metrics.job() if self.metrics is not None else None,
        )
        # A fresh context: the job must not inherit the deadline of the CreateJob call that started it.
        task = asyncio.create_task(
            runner.run(self._slots), name=f"job-{job.id}", context=contextvars.Context()
        )
        self._running[job.id] = (runner, task)

        def done(_: asyncio.Task[None]) -> None:
            self.quotas.release(job.owner)
            if runner.job.state in TERMINAL_JOB_STATES:  # else CancelJob ends it, or it resumes later
                self._forget(job.id)

        task.add_done_callback(done)

    def _forget(self, job_id: str) -> None:
        self._running.pop(job_id, None)
        self._feeds.stopped(job_id)

    async def _page(
        self, job: pipeline_pb2.Job, start: int, size: int, states: Sequence[int]
    ) -> tuple[list[pipeline_pb2.Item], int | None]:
        """Up to `size` items from index `start` in `states` (all when empty), and the index to go on
        from (None at the end). Items without a row have not started: PENDING, or CANCELLED once the
        job has ended."""
        total = job.spec.items
        unstarted = (
            pipeline_pb2.ITEM_STATE_CANCELLED
            if job.state in TERMINAL_JOB_STATES
            else pipeline_pb2.ITEM_STATE_PENDING
        )
        if states and unstarted not in states:  # only stored items can match: let SQL find them
            found = await self._store.items_in_range(job.id, start, total, states, limit=size + 1)
            return found[:size], found[size].index if len(found) > size else None
        page: list[pipeline_pb2.Item] = []
        cursor = start
        while cursor < total and len(page) <= size:
            stop = min(total, cursor + size + 1 - len(page))
            stored = {item.index: item for item in await self._store.items_in_range(job.id, cursor, stop)}
            for index in range(cursor, stop):
                item = stored.get(index)
                if item is None:
                    item = new_item(job.seed, index)
                    item.state = unstarted
                if not states or item.state in states:
                    page.append(item)
            cursor = stop
        return page[:size], page[size].index if len(page) > size else None

    async def _validate_choices(self, spec: pipeline_pb2.JobSpec) -> None:
        """Asks the services whether they know the spec's painter, engine...; a service that cannot be
        reached does not block the job: its items wait, and fail naming the choice if it is unknown."""
        try:
            await self._stages.validate(spec)
        except Unavailable as error:
            logger.warning("could not check the job's choices: %s", error)

    async def _by_request(
        self, request_id: str, spec: pipeline_pb2.JobSpec, caller: Principal
    ) -> pipeline_pb2.Job | None:
        """The caller's job created with this idempotency key (keys belong to their identity)."""
        job_id = await self._store.job_id_for_request(caller.identity, request_id)
        if job_id is None:
            return None
        job, _ = await self._job(job_id, caller)
        if job.spec != spec:
            raise AlreadyExists(f"already used by job {job_id} with a different spec", field="request_id")
        return job

    async def _job(self, job_id: str, caller: Principal = ANONYMOUS) -> tuple[pipeline_pb2.Job, int]:
        """The job and the sequence of its latest change, if the caller may see it."""
        if not job_id:
            raise InvalidArgument("required", field="job_id")
        try:
            check_job_id(job_id)
        except UnsafePath as error:
            raise InvalidArgument(str(error), field="job_id") from None
        found = await self._store.job(job_id)
        if found is not None and caller.may_access(found[0].owner):
            return found
        raise _denied(job_id, caller)


def _denied(job_id: str, caller: Principal) -> NotFound | PermissionDenied:
    """The same answer for a job the caller may not see and for no job at all (only an admin, who sees
    every job, learns that it does not exist)."""
    if caller.sees_every_job:
        return NotFound(f"no job {job_id!r}", field="job_id")
    return PermissionDenied(f"no job {job_id!r} that identity {caller.identity!r} may access", field="job_id")


def _without_results(item: pipeline_pb2.Item) -> pipeline_pb2.Item:
    slim = pipeline_pb2.Item()
    slim.CopyFrom(item)
    for name in ("story", "image", "evaluation"):
        slim.ClearField(name)
    return slim


def _without_results_event(event: pipeline_pb2.JobEvent) -> pipeline_pb2.JobEvent:
    if not event.HasField("item"):
        return event
    slim = pipeline_pb2.JobEvent()
    slim.CopyFrom(event)
    slim.item.CopyFrom(_without_results(event.item))
    return slim


def _encode_token(kind: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode()


def _decode_token(token: str, kind: str) -> int:
    try:
        prefix, position = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if prefix == kind and int(position) >= 0:
            return int(position)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidArgument("not a token from a previous page of this listing", field="page_token")
