"""The project's settings with the `floor` bench's URLconf (bench/floor_urls.py); used only by that bench."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
