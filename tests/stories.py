"""Articles written for the test suite: two outlets, English and French, several stories."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from newsroom import Story


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, 30, tzinfo=UTC)


BRIDGE = Story(
    slug="bridge-closure",
    title="Harbour bridge closed after cracks found in main span",
    language="en",
    published=_at(2, 8),
    paragraphs=(
        "The harbour bridge linking the old town to the eastern districts was closed to all traffic on "
        "Monday morning after engineers found cracks in a steel beam of the main span, "
        "the city council said.",
        "About 45,000 vehicles cross the bridge every day. Police set up diversions through the northern "
        "ring road and warned commuters to expect delays of up to an hour during the morning rush.",
        '"We will not reopen the bridge until we are certain it is safe," the council\'s head of transport, '
        "Maria Lindqvist, told reporters. Inspections are expected to take at least two weeks.",
    ),
)

VACCINE = Story(
    slug="vaccine-rollout",
    title="Health ministry extends spring vaccination campaign to over-60s",
    language="en",
    published=_at(2, 11),
    paragraphs=(
        "The health ministry will offer a seasonal booster to everyone aged 60 and over from next week, "
        "extending a campaign that had been limited to care-home residents and hospital staff.",
        "Officials said 1.2 million doses had been delivered to regional pharmacies. Appointments can be "
        "booked online or by telephone, and walk-in clinics will open in twelve cities on Saturday.",
        "The minister said uptake among care-home residents had reached 81 per cent in the first month, "
        "higher than the previous year.",
    ),
)

STRIKE = Story(
    slug="port-strike",
    title="Dock workers begin three-day strike over pay",
    language="en",
    published=_at(3, 6),
    paragraphs=(
        "Dock workers at the country's two largest container ports walked out at dawn on Tuesday at the "
        "start of a three-day strike over pay, halting the loading of about 300 ships.",
        "The union is demanding a 9 per cent raise to keep up with inflation; the port operators have "
        "offered 4 per cent. Talks broke down on Sunday night without a new date being set.",
        "Retailers warned that a longer dispute could leave shelves short of imported goods before the "
        "Easter holidays.",
    ),
)

INCENDIE = Story(
    slug="incendie-entrepot",
    title="Un incendie ravage un entrepôt de la zone industrielle",
    language="fr",
    published=_at(2, 9),
    paragraphs=(
        "Un violent incendie a détruit dans la nuit de dimanche à lundi un entrepôt de 8 000 mètres carrés "
        "dans la zone industrielle du Port-Neuf, sans faire de victime, selon les pompiers.",
        "Une centaine de sapeurs-pompiers ont été mobilisés pendant plus de six heures pour venir à bout "
        "des flammes. Les habitants des rues voisines ont été invités à garder leurs fenêtres fermées.",
        "« L'origine du sinistre reste inconnue à ce stade », a déclaré le procureur de la République, qui "
        "a ouvert une enquête.",
    ),
)

ELECTIONS = Story(
    slug="municipales-liste",
    title="Municipales : la maire sortante annonce sa candidature",
    language="fr",
    published=_at(2, 14),
    paragraphs=(
        "La maire sortante a annoncé mardi qu'elle briguerait un troisième mandat lors des élections "
        "municipales de l'an prochain, mettant fin à plusieurs mois de spéculations.",
        "Devant quelque 400 militants réunis dans une salle des fêtes, elle a présenté les grandes lignes "
        "de son programme : transports publics gratuits le week-end et rénovation de trois écoles.",
        "L'opposition a dénoncé « un bilan en trompe-l'œil » et doit désigner son propre candidat en juin.",
    ),
)

TRAMWAY = Story(
    slug="tramway-ligne-b",
    title="La ligne B du tramway prolongée jusqu'à l'hôpital",
    language="fr",
    published=_at(3, 10),
    paragraphs=(
        "Les travaux de prolongement de la ligne B du tramway débuteront en septembre, a confirmé jeudi "
        "la métropole, pour un coût estimé à 95 millions d'euros.",
        "Quatre nouvelles stations desserviront le quartier universitaire et le centre hospitalier, où "
        "travaillent près de 6 000 personnes. La mise en service est prévue pour la fin de l'année 2028.",
        "Les commerçants de l'avenue principale redoutent deux années de chantier et réclament des "
        "indemnisations.",
    ),
)

PARK = Story(
    slug="city-park",
    title="New riverside park opens to the public",
    language="en",
    published=_at(4, 9),
    paragraphs=(
        "A new riverside park built on the site of a former gasworks opened to the public on Wednesday, "
        "adding eleven hectares of green space to the city's southern districts.",
        "The project cost 28 million and took four years. Soil on the site had to be cleaned of tar and "
        "heavy metals before 2,000 trees could be planted, the parks department said.",
        "Residents who had campaigned for the park for a decade attended the opening ceremony.",
    ),
)

MARCHE = Story(
    slug="marche-couvert",
    title="Le marché couvert rouvre après deux ans de travaux",
    language="fr",
    published=_at(4, 11),
    paragraphs=(
        "Le marché couvert du centre-ville a rouvert ses portes samedi après deux ans de rénovation, en "
        "présence de plusieurs centaines de visiteurs venus dès l'aube.",
        "Une quarantaine de commerçants y sont installés, dont huit nouveaux producteurs locaux. La "
        "charpente métallique du XIXe siècle a été entièrement restaurée.",
        "La municipalité espère attirer 15 000 visiteurs par semaine d'ici l'été.",
    ),
)

LIBRARY = Story(
    slug="library-hours",
    title="Public libraries to open on Sundays from April",
    language="en",
    published=_at(5, 8),
    paragraphs=(
        "All eight public libraries in the city will open on Sunday afternoons from the first week of "
        "April, the culture department announced on Thursday.",
        "The change follows a pilot at the central library, where Sunday visits averaged 1,800 people. "
        "Staff will be paid a weekend allowance agreed with the unions in January.",
        "The department said it would review visitor numbers after six months.",
    ),
)

BAKERY = Story(
    slug="boulangerie-concours",
    title="Une boulangerie du quartier remporte le concours de la meilleure baguette",
    language="fr",
    published=_at(5, 12),
    paragraphs=(
        "Une boulangerie de la rue des Tanneurs a remporté mercredi le concours de la meilleure baguette "
        "de la ville, devant 120 autres candidats.",
        "Le jury, composé de professionnels et d'habitants tirés au sort, a salué une croûte dorée et une "
        "mie alvéolée. Le lauréat fournira le palais présidentiel pendant un an.",
        "« C'est la récompense de vingt ans de travail », a réagi le boulanger, visiblement ému.",
    ),
)


def copy_of(story: Story, slug: str) -> Story:
    """The same text, republished under another URL (an exact duplicate)."""
    return Story(
        slug=slug,
        title=story.title,
        language=story.language,
        published=story.published,
        paragraphs=story.paragraphs,
        author="Agency",
    )


def write_jsonl(path: Path, stories: Iterable[Story]) -> Path:
    """``stories`` as the benchmarks read documents: one ``{"title", "text"}`` per line."""
    path.write_text(
        "\n".join(json.dumps({"title": s.title, "text": "\n".join(s.paragraphs)}) for s in stories)
    )
    return path
