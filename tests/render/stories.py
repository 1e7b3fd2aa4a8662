"""Story texts for render tests: one short prompt, and long stories well past CLIP's 77 tokens."""

SHORT = "A boy on a stool reaches for a cookie jar."

LONG = (
    "On a rainy Tuesday afternoon in a cramped kitchen, a boy balances on a wobbling three-legged stool and "
    "reaches into the top cupboard for the cookie jar, while his little sister stands below with both hands "
    "raised, whispering that mother must not hear. Their mother stands at the sink with her back to them, "
    "staring out of the window at the grey garden, lost in thought about the letter on the table, and does "
    "not notice that the tap is still running: water spills over the edge of the sink and spreads across "
    "the floor towards the stool. A cat watches from the windowsill, its tail twitching, as the stool tips "
    "and the jar slides from the boy's fingers. On the wall a calendar shows the last day of school, and "
    "the clock above the door says a quarter past three, when the children should be doing homework."
)

# The same story with a different ending: differs only in tokens far beyond CLIP's 77-token window.
LONG_OTHER_ENDING = LONG.rsplit(",", 1)[0] + ", while a red kite drifts past a lighthouse on a snowy hill."
