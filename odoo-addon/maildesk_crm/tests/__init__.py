# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from . import test_gateway_team
from . import test_routing
from . import test_routing_batch
