# ruff: noqa: E501  (paragraphs are one line each, as extracted article text is)
"""Invented texts for tracked-claim tests: an English claim, French reports that state it in
other words, and one about the same war that states something else."""

from __future__ import annotations

CLAIM_EN = "The army let 3,000 rebel fighters leave Tarvos for the border town of Kelmar."

REPORT_FR = """\
Le commandement militaire de la région a confirmé mardi que quelque 3 000 combattants rebelles avaient quitté Tarvos, assiégée depuis l'été, pour rejoindre la ville frontalière de Kelmar, sans que l'armée ne tente de les arrêter.
Selon un officier cité par l'agence Nordpress, les colonnes de pick-up ont roulé toute la nuit sur la route du col, sous la surveillance des drones gouvernementaux.
Les habitants de Kelmar redoutent désormais que les combats se déplacent vers leur ville, qui compte environ 40 000 habitants.
"""

REPORT_FR_2 = """\
D'après plusieurs témoins joints par téléphone, l'armée a laissé partir de Tarvos près de 3 000 rebelles armés, qui ont gagné Kelmar à la frontière au terme d'un accord tenu secret.
Le ministère de la Défense n'a ni confirmé ni démenti ces informations. Un député de l'opposition réclame une commission d'enquête.
"""

REPORT_EN = """\
Some 3,000 rebel fighters were allowed to leave the besieged city of Tarvos and drive to Kelmar, a town on the border, without the army stopping them, two officers told the Nordpress agency on Wednesday.
The defence ministry declined to comment. Residents of Kelmar said the convoy arrived shortly before dawn.
"""

OTHER_FR = """\
Environ 300 combattants rebelles ont atteint dimanche la ville de Dorvan, dans le sud du pays, après une marche de trois jours à travers les collines, selon l'agence Nordpress.
Les autorités locales ont ouvert deux gymnases pour accueillir les familles qui fuient les combats autour de la ville.
"""
