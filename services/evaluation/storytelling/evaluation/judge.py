"""The yes/no judge: does the image show this statement? Scored VQAScore-style by P(yes).

P(yes) is read from the log-probabilities of the first word the judge generates, summed over the
spellings of each answer (" Yes", "yes", "YES", "▁yes"...) and normalised over yes + no. Where the engine
gives no log-probabilities, or neither word is among the alternatives, the score is 1 for an answer
that starts with yes and 0 otherwise (an unparseable answer counts as not yes).
"""

import math
import string
from dataclasses import dataclass

from storytelling.evaluation.images import EncodedImage
from storytelling.llm import ChatEngine, ChatMessage, Completion, SamplingParams, TextPart

PROMPT_VERSION = "judge/1"
QUESTION = 'Does this image show the following? "{statement}" Answer with yes or no.'
_STRIP = string.whitespace + string.punctuation + "▁Ġ"


@dataclass(frozen=True)
class Verdict:
    question: str
    answer: str
    score: float
    from_logprobs: bool


def word(token: str) -> str:
    """A token or answer's first word, lower-case, without tokenizer space markers or punctuation."""
    parts = token.replace("▁", " ").replace("Ġ", " ").split()
    return parts[0].strip(_STRIP).lower() if parts else ""


def yes_probability(alternatives: dict[str, float]) -> float | None:
    """P(yes | yes or no) from one position's top log-probabilities; None when neither word is there."""
    mass = {"yes": 0.0, "no": 0.0}
    for token, logprob in alternatives.items():
        answer = word(token)
        if answer in mass:
            mass[answer] += math.exp(logprob)
    total = mass["yes"] + mass["no"]
    return mass["yes"] / total if total > 0 else None


def score_completion(completion: Completion) -> tuple[float, bool]:
    """(score, from_logprobs) of one judge answer."""
    for position in completion.logprobs or []:
        if word(position.token):  # the first position that holds a word, past any leading whitespace
            p = yes_probability(position.top) if position.top else None
            if p is not None:
                return p, True
            break
    return (1.0 if word(completion.text) == "yes" else 0.0), False


class Judge:
    def __init__(self, engine: ChatEngine, *, top_logprobs: int = 20, max_tokens: int = 4) -> None:
        self.engine = engine
        self.params = SamplingParams(temperature=0.0, max_tokens=max_tokens, top_logprobs=top_logprobs)

    async def judge(self, image: EncodedImage, statement: str) -> Verdict:
        question = QUESTION.format(statement=statement)
        completion = await self.engine.chat(
            [ChatMessage("user", (image.part(), TextPart(question)))], self.params
        )
        score, from_logprobs = score_completion(completion)
        return Verdict(question, completion.text.strip(), score, from_logprobs)
