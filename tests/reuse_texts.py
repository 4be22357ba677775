# ruff: noqa: E501  (paragraphs are one line each, as extracted article text is)
"""Invented news texts for duplicate and reuse tests: an English and a French wire story, a
repost that borrows some paragraphs under its own introduction, and a report of the same
event written in other words."""

from __future__ import annotations

import random
import re

WIRE_EN = """\
Engineers at the Korvath reservoir in northern Meridia opened all six spillway gates on Sunday night after three days of record rainfall pushed the water level to within forty centimetres of the crest, the national water agency said.
About 12,000 residents of the towns of Ostrel and Vanmark, downstream of the dam, were ordered to leave their homes before midnight. Buses provided by the regional government carried families to sports halls and schools in the provincial capital, where the Red Crescent set up beds and field kitchens.
"The structure is sound, but we cannot take any risk with the lives of the people living below it," the agency's director, Halima Osterberg, told reporters at the control centre shortly after the gates were opened.
The Korvath dam, completed in 1987, holds up to 410 million cubic metres of water and supplies the capital with most of its drinking water. An inspection carried out in 2023 found cracks in the concrete of the left abutment that were repaired last year at a cost of 38 million euros.
Meteorologists expect another 80 millimetres of rain over the catchment area by Tuesday. The river Sella, which runs through both evacuated towns, had already broken its banks in several places on Saturday, flooding farmland and cutting the main road between Ostrel and the coast.
Prime Minister Tomas Verhal cancelled a visit abroad and was due to chair a crisis meeting on Monday morning. The opposition accused the government of having ignored warnings about the state of the dam's drainage tunnels for more than a decade.
"""

REPOST_EN = """\
We have been following the situation in the Sella valley closely since Friday, and several of our readers live in the area. Here is what the national water agency and the wire services are reporting tonight, followed by our own notes on what it means for the region.
About 12,000 residents of the towns of Ostrel and Vanmark, downstream of the dam, were ordered to leave their homes before midnight. Buses provided by the regional government carried families to sports halls and schools in the provincial capital, where the Red Crescent set up beds and field kitchens.
The Korvath dam, completed in 1987, holds up to 410 million cubic metres of water and supplies the capital with most of its drinking water. An inspection carried out in 2023 found cracks in the concrete of the left abutment that were repaired last year at a cost of 38 million euros.
Our view: the valley has paid for years of neglect before. If you need a place to stay, our community board lists families offering a spare room, and the municipal hotline is open all night.
"""

OTHER_EN = """\
Thousands of people fled the Sella valley overnight as water managers released a torrent from the swollen Korvath reservoir, fearing that the ageing barrier could give way after an unprecedented deluge.
Police went door to door in Ostrel and Vanmark, telling some twelve thousand inhabitants to pack essentials and board evacuation coaches. Many spent the night on camp beds in gymnasiums in the regional capital.
Officials insisted the dam itself was not in danger. Its director Halima Osterberg said the decision to open the spillways was a precaution taken to protect residents, not a sign that the wall was failing.
Built in the late 1980s, the reservoir is the capital's main source of tap water. Critics recall that engineers found fissures in one of its flanks two years ago and that repairs only began after a long dispute over who would pay.
Forecasters warn that more heavy showers are on the way, and farmers along the river say their fields have already disappeared under brown water. The prime minister postponed a foreign trip to lead an emergency meeting.
"""

WIRE_FR = """\
Le conseil municipal de Bréval-sur-Lône a voté jeudi soir la fermeture de la dernière maternité du département, une décision qui obligera les futures mères à parcourir jusqu'à 75 kilomètres pour accoucher, selon l'agence régionale de santé.
Le service, qui a enregistré 412 naissances l'an dernier, manquait depuis deux ans de gynécologues et d'anesthésistes. Faute de médecins, il avait déjà dû suspendre son activité à onze reprises en 2025, renvoyant les patientes vers l'hôpital de Saint-Amarin.
« Nous avons tout essayé pour recruter, mais aucun candidat ne veut s'installer ici pour assurer des gardes vingt-quatre heures sur vingt-quatre », a déclaré le directeur de l'établissement, Paul Ménestrel, à l'issue de la séance.
Un collectif d'habitants, qui avait réuni plus de 9 000 signatures contre la fermeture, a annoncé son intention de saisir le tribunal administratif. Ses membres dénoncent une mise en danger des femmes enceintes et des nouveau-nés dans un territoire où les routes sont souvent coupées par la neige en hiver.
L'agence régionale de santé promet en échange un centre périnatal de proximité, ouvert six jours sur sept, et une ambulance dédiée stationnée en permanence à Bréval. Le ministère de la Santé n'a pas souhaité commenter.
"""

REWRITE_FR = """\
C'est un coup dur pour tout le nord du département. Après des mois d'incertitude, les élus ont tranché : la maternité ferme.
Le conseil municipal de Bréval-sur-Lône a voté jeudi soir la fermeture de la dernière maternité du département, une décision qui obligera les futures mères à parcourir jusqu'à 75 kilomètres pour accoucher.
Les habitants que nous avons rencontrés vendredi matin sur le marché ne cachaient pas leur colère. Beaucoup se souviennent d'être nés dans cet hôpital, comme leurs enfants après eux.
« Nous avons tout essayé pour recruter, mais aucun candidat ne veut s'installer ici pour assurer des gardes vingt-quatre heures sur vingt-quatre », a déclaré le directeur de l'établissement, Paul Ménestrel, à l'issue de la séance.
Un collectif d'habitants, qui avait réuni plus de 9 000 signatures contre la fermeture, a annoncé son intention de saisir le tribunal administratif. Ses membres dénoncent une mise en danger des femmes enceintes et des nouveau-nés dans un territoire où les routes sont souvent coupées par la neige en hiver.
Nous reviendrons dans notre prochaine édition sur les solutions envisagées par l'agence régionale de santé.
"""

OTHER_FR = """\
Les futures mamans du haut pays devront désormais faire plus d'une heure de route pour donner naissance : les élus de Bréval-sur-Lône ont acté la disparition de leur maternité, la seule qui subsistait dans le département.
Avec à peine plus de quatre cents accouchements par an et des plannings de garde impossibles à remplir, l'établissement vivait sous perfusion depuis 2023. À plusieurs reprises l'an passé, les patientes ont été réorientées vers Saint-Amarin.
Son directeur, Paul Ménestrel, reconnaît un échec du recrutement : aucun praticien n'accepte les astreintes permanentes qu'exige un tel service.
Une pétition signée par des milliers de riverains n'a pas suffi. Ses initiateurs veulent désormais porter l'affaire devant la justice administrative, en rappelant que la neige isole régulièrement les villages l'hiver.
En compensation, les autorités sanitaires annoncent l'ouverture d'un centre de suivi de grossesse et la présence continue d'une ambulance sur place.
"""

_WORD = re.compile(r"\w+")


def change_words(text: str, rate: float, seed: int = 3) -> str:
    """``text`` with ``rate`` of its words replaced by other words (a planted near-duplicate)."""
    matches = list(_WORD.finditer(text))
    rng = random.Random(seed)
    picked = sorted(rng.sample(range(len(matches)), max(1, round(rate * len(matches)))))
    out, last = [], 0
    for i in picked:
        m = matches[i]
        out.append(text[last : m.start()])
        out.append(f"mot{i}")
        last = m.end()
    out.append(text[last:])
    return "".join(out)
