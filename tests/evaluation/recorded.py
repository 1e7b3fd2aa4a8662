"""Model outputs recorded from real engines (or written in their observed shapes), good and broken."""
# ruff: noqa: E501  (recorded outputs are kept verbatim)

KEY_POINTS_GOOD = """{
  "time": ["There is a decorated Christmas tree in the corner."],
  "location": ["The scene is a small kitchen with a sink and cupboards."],
  "character_role": [],
  "character_relationship": ["A mother stands near her son."],
  "event": ["A boy is standing on a tipping stool reaching into a cookie jar.",
            "Water is overflowing from the sink onto the floor."],
  "event_causal_relationship": ["The floor is wet because the sink is overflowing."],
  "mental_state": ["The mother looks lost in thought."]
}"""

KEY_POINTS_OTHER = """{
  "time": ["The clock on the arena wall shows midnight."],
  "location": ["The scene is an ice-hockey arena full of spectators."],
  "character_role": ["A referee in a striped shirt is on the ice."],
  "event": ["A referee is slipping on confetti."]
}"""

KEY_POINTS_FENCED = "```json\n" + KEY_POINTS_GOOD + "\n```"

# Small instruct models often wrap the object in prose.
KEY_POINTS_PROSE = "Sure! Here are the key points:\n" + KEY_POINTS_GOOD

KEY_POINTS_TRUNCATED = KEY_POINTS_GOOD[:180]

KEY_POINTS_BAD_SENTENCES = """{
  "event": ["he steals cookies.", "The boy climbs. The stool tips.", "Cookies"],
  "mental_state": ["She looks distracted."],
  "weather": ["It is raining outside the window."]
}"""

KEY_POINTS_EMPTY = '{"time": [], "location": [], "event": []}'

KEY_POINTS_LIST = '["There is a boy."]'

CLUES_GOOD = """{"clues": [
  {"dimension": "time", "clue": "a decorated tree with gifts", "inference": "it is Christmas"},
  {"dimension": "mental_state", "clue": "the boy's wide eyes", "inference": "he is afraid of falling"},
  {"dimension": "event_causal_relationship", "clue": "water on the floor below the sink",
   "inference": "the sink overflowed because nobody turned off the tap"},
  {"dimension": "location", "clue": "cupboards and a sink", "inference": ""}
]}"""

CLUES_BAD = """{"clues": [{"dimension": "weather", "clue": "rain"}, {"dimension": "event", "clue": ""}]}"""

# /v1/chat/completions choice.logprobs.content[0] from vLLM 0.32 (SmolVLM-style tokens).
VLLM_YES_POSITION = {
    "token": "Yes",
    "logprob": -0.105,
    "top_logprobs": [
        {"token": "Yes", "logprob": -0.105},
        {"token": "No", "logprob": -2.41},
        {"token": " Yes", "logprob": -4.6},
        {"token": "yes", "logprob": -5.3},
        {"token": "The", "logprob": -6.0},
    ],
}

# Recorded from SmolLM2-135M-Instruct (the embedded default LLM), greedy, max_tokens=300, on the key-point
# prompt for the cookie-theft story: prose, a fence, invented keys, cut off mid-object.
SMOLLM2_KEY_POINTS = (
    "Here is a JSON object with the seven key points a faithful illustration of the story:\n"
    "\n"
    "```json\n"
    "{\n"
    '  "key_points": [\n'
    "    {\n"
    '      "title": "On Christmas morning in a small kitchen",\n'
    '      "description": "A boy stands on a tipping stool to steal cookies from a jar while his mother lets the sink overflow.",\n'
    '      "location": "The kitchen",\n'
    '      "character_role": "A nurse",\n'
    '      "event_causal_relationship": "A boy holds a box of cookies.",\n'
    '      "mental_state": "A boy stands on a tipping stool to steal cookies from a jar while his mother lets the sink overflow.",\n'
    '      "event_relationship": "A boy holds a box of cookies.",\n'
    '      "event_relationship_cause_and_effect": "A boy holds a box of cookies.",\n'
    '      "event_relationship_causal_effect_and_causal_effect_relationship_name": "A boy holds a box of cookies.",\n'
    '      "event_relationship_causal_effect_and_causal_effect_relationship_name": "A boy holds a box of cookies.",\n'
    '      "event_relationship_causal_effect_and_causal_effect_relationship_name": "A boy holds a box of cookies.",\n'
    '      "event_relationship_causal_effect_and_causal_effect_relationship_name": "A boy holds a box of cookies.",\n'
    '      "event_relationship'
)
