"""A staged pipeline: items flow through stages connected by bounded queues.

Every stage has its own workers, so stage i+1 works on early items while stage i works on later ones.
The queue in front of a stage holds at most as many items as the stage has workers: a slow stage fills
its queue, the stage before it blocks on `put`, and no stage runs more than a bounded distance ahead.
"""

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class PipelineStage(Generic[T]):
    name: str
    concurrency: int
    # Processes one item; returns False when the item must not go on to the next stage (it failed).
    run: Callable[[T], Awaitable[bool]]


async def run_pipeline(items: AsyncIterable[T] | Iterable[T], stages: Sequence[PipelineStage[T]]) -> None:
    """Runs every item through `stages` in order and returns when every item has left the pipeline.
    Items are taken from `items` only as the first stage has room, so they need not all exist at once."""
    queues: list[asyncio.Queue[T]] = [asyncio.Queue(maxsize=max(1, stage.concurrency)) for stage in stages]

    async def work(position: int) -> None:
        stage, inbox = stages[position], queues[position]
        while True:
            item = await inbox.get()
            try:
                if await stage.run(item) and position + 1 < len(stages):
                    await queues[position + 1].put(item)
            finally:
                inbox.task_done()

    async with asyncio.TaskGroup() as group:
        workers = [
            group.create_task(work(position), name=f"{stage.name}-{worker}")
            for position, stage in enumerate(stages)
            for worker in range(stage.concurrency)
        ]
        if isinstance(items, AsyncIterable):
            async for item in items:
                await queues[0].put(item)
        else:
            for item in items:
                await queues[0].put(item)
        # An item leaves queue i (task_done) only after it was put into queue i+1, so draining the queues
        # in order means every item has left the pipeline.
        for queue in queues:
            await queue.join()
        for worker in workers:
            worker.cancel()
