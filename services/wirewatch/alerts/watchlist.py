"""The watchlist of tracked claims: a compacted Kafka topic, key = claim id, value = the claim.

Writers (``wirewatch claims track|import|untrack``) send the whole claim; untracking sends it
again with ``active: false``, so the topic keeps who tracked what and when. Readers
(:class:`Watchlist`, one per alerts worker) read every partition from the beginning without a
consumer group and keep following it, so a change reaches every running worker within a
poll, without a restart. The indexer mirrors the topic into the ``claims`` index.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from wirewatch.core.ids import stable_id
from wirewatch.core.kafka import client_options, produce, read_topic
from wirewatch.core.logs import get_logger
from wirewatch.core.models import MessageError, TrackedClaim
from wirewatch.core.settings import Settings
from wirewatch.core.text import normalise
from wirewatch.enricher.language import UNDETERMINED, detect_language

log = get_logger(__name__)

#: Seconds between two tries to read the claims topic while the broker does not answer.
RETRY_SECONDS = 1.0


class ClaimFileError(ValueError):
    """A line of a claims file that is not a claim."""


#: What a claim's default id leaves out of its normalised text: the quotes around it and the
#: punctuation at its end ("... leave Mosul." and "... leave Mosul" are one claim).
_CLAIM_EDGES = " \"'«».!?…;:,"


def claim_id(text: str) -> str:
    """The default id of a claim: a hash of its normalised text, without the quotes around it or
    its end's punctuation (tracking it twice, with or without its full stop, is one claim)."""
    return stable_id("claim", normalise(text).strip(_CLAIM_EDGES))


def find_tracked(
    tracked: Mapping[str, TrackedClaim], by_text: Mapping[str, TrackedClaim], claim: TrackedClaim
) -> TrackedClaim | None:
    """The claim of the watchlist ``tracked`` (by id) that ``claim`` is: the one with its id, or,
    when ``claim`` has its text's default id, one tracked with the same text under another id
    (given with ``--id``, or a default id from before ids left out the end's punctuation).
    ``by_text``: ``tracked`` by :func:`claim_id` of their texts (:func:`by_claim_text`)."""
    found = tracked.get(claim.id)
    if found is None and claim.id == claim_id(claim.text):
        found = by_text.get(claim.id)
    return found


def by_claim_text(tracked: Mapping[str, TrackedClaim]) -> dict[str, TrackedClaim]:
    """The claims of ``tracked`` by :func:`claim_id` of their text (the first tracked, if several)."""
    out: dict[str, TrackedClaim] = {}
    for claim in tracked.values():
        out.setdefault(claim_id(claim.text), claim)
    return out


#: Said of a claim written all in lower case (:func:`all_lower_case`).
LOWER_CASE_WARNING = (
    "all in lower case: write its names as they are printed (Mosul, ISIS), or it matches far less"
)


def all_lower_case(text: str) -> bool:
    """Whether a claim is written all in lower case (20 letters or more, no capital), and so
    matches less: the matcher reads names by their capitals ("Mosul", "ISIS") and its sentence
    vectors see case. "the us-led coalition let 5,000 isis fighters leave mosul for syria"
    scored 0.10 against a report of it, the same words capitalised 0.88."""
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 20 and not any(c.isupper() for c in letters)


def new_claim(text: str, **fields: Any) -> TrackedClaim:
    """A claim to track; ``id`` defaults to :func:`claim_id`, ``language`` to the detected one
    (the matcher treats a sentence in another language than the claim as a translation)."""
    text = text.strip()
    if not text:
        raise ValueError("a claim needs a text")
    if not fields.get("language"):
        detected = detect_language(text, None).code
        fields["language"] = None if detected == UNDETERMINED else detected
    return TrackedClaim(id=fields.pop("id", None) or claim_id(text), text=text, **fields)


def track_again(
    existing: TrackedClaim,
    text: str,
    *,
    labels: dict[str, str] | None = None,
    keywords: Sequence[str] = (),
    **given: Any,
) -> tuple[TrackedClaim, list[str]]:
    """``existing`` tracked again (its id given again, or its text): its ``created_at``, labels and
    keywords are kept, ``labels`` merged in (a key given wins), ``keywords`` added, each other
    field ``given`` (not None: ``language``, ``threshold``, ``owner``) replacing its own; active
    again. Also what changed, in words (``["labels updated"]``; empty: nothing)."""
    text = text.strip() or existing.text
    merged_labels = existing.labels | (labels or {})
    merged_keywords = list(dict.fromkeys([*existing.keywords, *keywords]))
    update: dict[str, Any] = {
        "text": text,
        "labels": merged_labels,
        "keywords": merged_keywords,
        "active": True,
        **{name: value for name, value in given.items() if value is not None},
    }
    claim = existing.model_copy(update=update)
    changes = []
    if text != existing.text:
        changes.append("text updated")
    if merged_labels != existing.labels:
        changes.append("labels updated")
    if merged_keywords != existing.keywords:
        changes.append("keywords added")
    changes += [f"{name} updated" for name in given if getattr(claim, name) != getattr(existing, name)]
    return TrackedClaim.model_validate(claim.model_dump()), changes


#: What a line of a claims file may say (the rest of a claim is the watchlist's own).
CLAIM_FILE_KEYS = frozenset({"text", "id", "language", "keywords", "labels", "threshold", "owner"})
CLAIM_FILE_HELP = '{"text", "id"?, "language"?, "keywords"?, "labels"?, "threshold"?, "owner"?}'


@dataclass(frozen=True)
class ClaimLine:
    """A line of a claims file: the ``claim`` it makes (as ``claims track`` makes one: the id a
    hash of the text unless given, the language detected unless given), the ``language`` it gave
    (None: not given, so a tracked claim keeps its own) and its line ``number`` (0: the claim
    ``claims track`` was given, merged as a file's one line)."""

    claim: TrackedClaim
    language: str | None
    number: int


def read_claims_file(path: Path) -> list[ClaimLine]:
    """JSON lines, each ``{"text", "id"?, "language"?, "keywords"?, "labels"?, "threshold"?, "owner"?}``;
    an unknown key or a text that is not a string is an error naming the line."""
    lines = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            unknown = sorted(set(data) - CLAIM_FILE_KEYS)
            if unknown:  # a typo (``label`` for ``labels``) would be lost without a word
                named = ", ".join(map(repr, unknown))
                raise ValueError(f"unknown key(s) {named}: expected {CLAIM_FILE_HELP}")
            text = data.pop("text", "")
            if not isinstance(text, str):
                raise ValueError(f'"text" must be a string, not {type(text).__name__}')
            language = data.get("language") or None
            lines.append(ClaimLine(new_claim(text, **data), language, number))
        except (ValueError, ValidationError) as exc:
            raise ClaimFileError(f"{path}:{number}: {exc}") from exc
    return lines


#: What importing a file did to a claim: tracked for the first time, tracked again (it was
#: untracked), updated (see the changes), or nothing (the file says what the watchlist says).
ImportOutcome = Literal["new", "tracked_again", "updated", "unchanged"]


@dataclass(frozen=True)
class ImportedClaim:
    """A claim of a claims file merged into the watchlist: the claim as it is now, what
    happened to it, the words of :func:`track_again` for what changed, and its file lines."""

    claim: TrackedClaim
    outcome: ImportOutcome
    changes: list[str]
    lines: list[int]


def merge_claims_file(tracked: Mapping[str, TrackedClaim], lines: Sequence[ClaimLine]) -> list[ImportedClaim]:
    """Each line of a claims file tracked as ``claims track`` tracks it, over the watchlist
    ``tracked`` (by id; :func:`current`): a new claim as the line makes it, a tracked one
    (untracked ones too) through :func:`track_again`, so it keeps its ``created_at``, labels and
    keywords, and the line's labels, keywords, language, threshold and owner are merged in.
    Lines for one claim are merged in file order, as that many ``claims track``; one result per
    claim, in the order first seen. Claims not in the file are not in the result."""
    merged: dict[str, TrackedClaim] = {}
    numbers: dict[str, list[int]] = {}
    by_text = by_claim_text(tracked)
    for line in lines:
        claim = line.claim
        target = find_tracked(tracked, by_text, claim)
        key = target.id if target is not None else claim.id
        before = merged.get(key, target)
        if before is not None:
            claim, _ = _track_line(before, claim, line.language)
        merged[key] = claim
        numbers.setdefault(key, []).append(line.number)
    out = []
    for cid, claim in merged.items():
        existing = tracked.get(cid)
        if existing is None:
            out.append(ImportedClaim(claim, "new", [], numbers[cid]))
            continue
        # The merged claim over the one tracked gives the merged claim itself (labels and keywords
        # only grew, the rest was replaced): its changes are those of all the claim's lines.
        _, changes = _track_line(existing, claim, claim.language)
        outcome: ImportOutcome = "updated" if changes or claim != existing else "unchanged"
        if not existing.active:
            outcome = "tracked_again"
        out.append(ImportedClaim(claim, outcome, changes, numbers[cid]))
    return out


def _track_line(
    existing: TrackedClaim, line: TrackedClaim, language: str | None
) -> tuple[TrackedClaim, list[str]]:
    """:func:`track_again` with what a line of a claims file gave (``language``: as given)."""
    return track_again(
        existing,
        line.text,
        labels=line.labels,
        keywords=line.keywords,
        language=language,
        threshold=line.threshold,
        owner=line.owner,
    )


async def publish(settings: Settings, claims: Iterable[TrackedClaim]) -> None:
    """Put claims on the watchlist (or replace them)."""
    await produce(settings, settings.topic_claims, [(c.id.encode(), c.to_bytes()) for c in claims])


async def current(settings: Settings) -> dict[str, TrackedClaim]:
    """The latest version of every claim on the watchlist, by id, in the order first tracked."""
    out: dict[str, TrackedClaim] = {}
    for key, value in await read_topic(settings, settings.topic_claims):
        if key is None:
            continue
        if value is None:
            out.pop(key.decode("utf-8", "replace"), None)
            continue
        try:
            claim = TrackedClaim.from_bytes(value)
        except MessageError:
            continue
        out[claim.id] = claim
    return dict(sorted(out.items(), key=lambda item: item[1].created_at))


def search_version(claim: TrackedClaim) -> str:
    """What the search of ``claim`` depends on: a claim with the same version is not searched
    again (its labels, owner and creation time change nothing found)."""
    threshold = "" if claim.threshold is None else repr(claim.threshold)
    return stable_id("retro", claim.text, claim.language or "", *sorted(claim.keywords), threshold)


class Watchlist:
    """Follows the claims topic and tells ``on_change`` about every claim, as it is now.

    Claims come in batches (one per poll), so loading thousands embeds them together rather than
    one by one. ``ready`` is set once everything the topic held at start has been read; claims
    seen after that are also passed to ``on_new`` when newly tracked, or tracked with another
    :func:`search_version` (text, language, keywords, threshold): the retroactive search wants them.
    """

    def __init__(
        self,
        settings: Settings,
        on_change: Callable[[Sequence[TrackedClaim]], None],
        on_new: Callable[[TrackedClaim], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_change = on_change
        self.on_new = on_new
        self.ready = asyncio.Event()
        self.versions: dict[str, str] = {}  # search_version of each active claim, by id
        self.recent: dict[str, TrackedClaim] = {}

    async def apply(self, claims: Sequence[TrackedClaim]) -> None:
        """Pass ``claims`` to ``on_change`` (in a thread: embedding thousands takes seconds, longer
        than a consumer session may go unanswered), then note which are tracked and which new."""
        if not claims:
            return
        await asyncio.to_thread(self.on_change, claims)
        for claim in claims:
            if not self.ready.is_set() and claim.created_at >= self._catch_up_since():
                self.recent[claim.id] = claim  # (only while loading, the recent ones: for the catch-up)
            version = search_version(claim)
            new = claim.active and self.versions.get(claim.id) != version
            if claim.active:
                self.versions[claim.id] = version
            else:
                self.versions.pop(claim.id, None)
            if new and self.ready.is_set() and self.on_new is not None:
                self.on_new(claim)

    async def run(self) -> None:
        """Read the topic from the beginning, then follow it until cancelled. While the broker
        does not answer, try again every second (raised, the error would crash the service)."""
        while True:
            try:
                await self._follow()
            except KafkaError as exc:
                log.warning(
                    "cannot read the claims topic now; trying again",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
                await asyncio.sleep(RETRY_SECONDS)

    async def _follow(self) -> None:
        topic = self.settings.topic_claims
        consumer = AIOKafkaConsumer(
            **client_options(self.settings),
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic)
            while not partitions:
                await consumer.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic)
                if not partitions:
                    await asyncio.sleep(1.0)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            while True:
                if not self.ready.is_set() and all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                    self.ready.set()
                    log.info("watchlist loaded", extra={"claims": len(self.versions)})
                    self._catch_up()
                batch = await consumer.getmany(timeout_ms=500)
                claims = [self._claim(r.key, r.value) for records in batch.values() for r in records]
                await self.apply([c for c in claims if c is not None])
        finally:
            await consumer.stop()

    def _catch_up(self) -> None:
        """Pass the claims tracked in the last ``claims_retro_catchup_hours`` to ``on_new``: one
        tracked while this service was down was "new" to nobody. Searching again is harmless
        (an alert's id hashes claim and article; a delivered id is never sent again)."""
        recent, self.recent = self.recent, {}
        for claim in recent.values():
            if self.on_new is not None and claim.id in self.versions:
                self.on_new(claim)

    def _catch_up_since(self) -> datetime:
        return datetime.now(UTC) - timedelta(hours=self.settings.claims_retro_catchup_hours)

    @staticmethod
    def _claim(key: bytes | None, value: bytes | None) -> TrackedClaim | None:
        """The claim a record carries; a tombstone untracks its key; None for a malformed one."""
        if value is None:
            if key is None:
                return None
            return TrackedClaim(id=key.decode("utf-8", "replace"), text="(removed)", active=False)
        try:
            claim: TrackedClaim = TrackedClaim.from_bytes(value)
        except MessageError as exc:
            log.warning("ignoring a malformed claim on the watchlist", extra={"reason": str(exc)})
            return None
        return claim
