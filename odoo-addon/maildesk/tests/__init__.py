from . import test_ingest
from . import test_gateway
from . import test_mailbox
from . import test_settings
from . import test_mail_server
from . import test_callback
from . import test_inbox_ui
from . import test_ingest_trust
