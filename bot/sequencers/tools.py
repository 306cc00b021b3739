"""The table of sending tools a draft can be created in: adding one is a client module and
its INFO row here."""

from __future__ import annotations

from bot.sequencers import apollo, instantly, lemlist, smartlead
from bot.sequencers.interface import ToolInfo

SEQUENCERS: dict[str, ToolInfo] = {
    info.key: info for info in (instantly.INFO, smartlead.INFO, lemlist.INFO, apollo.INFO)
}
