"""`python -m cimhub.server`: run the hub with settings from the environment."""

from .main import serve
from .settings import Settings

serve(Settings())
