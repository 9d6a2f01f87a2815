# Odoo-free helpers (no ``odoo`` import here): see sidecar_client and mailparts.
from . import mailparts, sidecar_client
