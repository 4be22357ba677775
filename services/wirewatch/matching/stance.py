"""Does a matched sentence repeat a tracked claim, or dispute it?

"5,000 ISIS fighters were allowed to leave Mosul" and "No, 5,000 ISIS fighters were not allowed
to leave Mosul" have nearly the same words and sentence vectors, so the matcher finds both; what
a fact-checker does next differs (the claim spreads / it is being debunked), so the alert says
which (``Alert.stance``). The score is the same either way: the sentence does speak of the claim.

A text is *negated* when it holds a negation or calls something false (``NEGATION_CUES``):

* English: not (but "not only"), n't, never, no (but "no fewer / less / more than", quantities,
  are not), none, nobody, nothing, neither, nor; false(ly), untrue, fake, hoax, debunk…, baseless, unfounded,
  misleading, myth, deny / denied / denies / denial, refute…, no evidence.
* French: ne / n' with pas, plus, jamais, aucun(e), rien, personne, nullement, guère, point
  within four words ("ne … que", *only*, is not a negation; "plus de 5 000", *more than*, is not
  either); jamais, aucun(e) alone; faux / fausse(s), infox, intox, démenti…, dément(ent),
  erroné…, sans fondement, canular, trompeu…, réfut….
* German, Spanish, Italian and Portuguese: their negation words (nicht, kein, nie, niemand,
  nichts; no, nunca, jamás, ninguno, nadie, nada; non, nessuno, niente; não, nunca, nenhum,
  ninguém) and debunking words (falsch, Falschmeldung, dementiert, widerlegt; falso, bulo,
  desmiente; falso, bufala, smentito; falso, boato, desmente). "not only" in each, Spanish "no
  más de" / "no menos de" (quantities) and the prefixes "non-" and "não-" are not negations.

A sentence *disputes* the claim when exactly one of the two is negated (a claim that something
did not happen is disputed by a sentence saying it did). Double negations ("not untrue") and
irony are beyond these cues: they make a sentence look negated, so the alert shows "disputes"
while the sentence repeats the claim; the evidence sentence is in the alert for a human to read.
"""

from __future__ import annotations

import re

from wirewatch.core.models import Stance
from wirewatch.core.text import normalise

_EN_NEGATION = (
    r"\bnot\b(?!\s+only\b)|n't\b|\bnever\b|\bnone\b|\bnobody\b|\bnothing\b|\bneither\b|\bnor\b"
    # "no" is Spanish as well: neither "no more than" nor "no más de" (quantities) is a negation.
    r"|\bno\b(?!\s+(?:(?:fewer|less|more|later|sooner)\s+than|(?:más|menos)\s+(?:de|que)|s[oó]lo)\b)"
)
_EN_FALSITY = (
    r"\bfalse(?:ly|hood)?\b|\buntrue\b|\bfake\b|\bhoax(?:es)?\b|\bdebunk\w*|\bbaseless\b|\bunfounded\b"
    r"|\bmisleading\b|\bmyths?\b|\bden(?:y|ied|ies|ial)\b|\brefut\w*"
)
_FR_WORD = r"[\w'-]+"  # the text is normalised: typographic apostrophes are plain ones
_FR_NEGATION = (
    rf"\bn(?:e\s+|'){_FR_WORD}(?:\s+{_FR_WORD}){{0,3}}?\s+"
    r"(?:pas|plus|jamais|aucune?|rien|personne|nullement|guère|point)\b"
    r"|\bjamais\b|\baucune?\b"
)
_FR_FALSITY = (
    r"\bfau(?:x|sse|sses)\b|\binfox\b|\bintox\b|\bd[ée]menti\w*|\bd[ée]men(?:t|tent)\b|\berron[ée]\w*"
    r"|\bsans\s+fondement\b|\bcanulars?\b|\btrompeu\w*|\br[ée]fut\w*"
)

# German, Spanish, Italian, Portuguese: the negation words and the usual debunking vocabulary
# (Spanish "no" is in the English pattern). "not only" in each ("nicht nur", "no sólo", "non
# solo", "non seulement", "não só / apenas") and the prefixes "non-" and "não-" are not negations;
# Italian "mai" (never) is left out: it is French for May, and "non ... mai" has "non" anyway.
_DE = (
    r"\bnicht\b(?!\s+nur\b)|\bkein(?:e|en|em|er|es)?\b|\bnie(?:mals)?\b|\bniemand\b|\bnichts\b|\bweder\b"
    r"|\bfalsch\w*|\bwiderleg\w*|\bunwahr\w*"
)
_ES = (
    r"\bnunca\b|\bjamás\b|\bningun[oa]?s?\b|\bnadie\b|\bnada\b"
    r"|\bfals[oa]s?\b|\bbulos?\b|\bdesmient\w*|\bdesmentid\w*|\bnieg(?:a|an|ó)\b|\bnegó\b"
)
_IT = (
    r"\bnon\b(?![-']|\s+(?:solo|soltanto|seulement)\b)|\bnessun[oa]?\b|\bniente\b|\bnulla\b"
    r"|\bfals[oi]\b|\bfalse\b|\bbufal[ae]\b|\bsmentit\w*|\bsmentisc\w*|\bnega(?:to|no)?\b"
)
_PT = r"\bnão\b(?!-|\s+(?:só|apenas)\b)|\bnenhum[a]?s?\b|\bninguém\b|\bdesment\w*|\bboatos?\b"

#: One pattern for every language: the cues of one language do not occur in another's text, or
#: mean the same there ("no", "nunca", "jamais", "falso", "non", "démenti"/"dementiert"), and are
#: listed once.
NEGATION_CUES = re.compile(
    "|".join((_EN_NEGATION, _EN_FALSITY, _FR_NEGATION, _FR_FALSITY, _DE, _ES, _IT, _PT)), re.IGNORECASE
)


def negated(text: str) -> bool:
    """Whether ``text`` holds a negation or calls something false (see the module doc)."""
    return NEGATION_CUES.search(normalise(text)) is not None


def stance(sentence: str, claim: str) -> Stance:
    """``disputes`` when exactly one of ``sentence`` and ``claim`` is negated, else ``repeats``."""
    return "disputes" if negated(sentence) != negated(claim) else "repeats"
