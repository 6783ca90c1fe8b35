"""`python -m cimhub.server`: run the hub with settings from the environment."""

from cimhub.server.main import serve
from cimhub.server.settings import Settings

serve(Settings())
