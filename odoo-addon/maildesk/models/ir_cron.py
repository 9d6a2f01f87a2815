# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models


class IrCron(models.Model):
    _inherit = "ir.cron"

    def _notifydb(self):
        # Each cron trigger created in a transaction wakes the cron workers
        # after its commit, each on a new connection to the "postgres"
        # database (never pooled): crm_iap_enrich triggers its cron for every
        # lead created, so a gateway batch making 20 leads opened 20
        # connections after its commit, 5-10 ms each. One wake-up per commit
        # does the same (the workers look at every due trigger); only for the
        # triggers of MailDesk's gateway ingest.
        if self.env.context.get("maildesk_ingest"):
            data = self.env.cr.postcommit.data
            if data.get("maildesk.cron_notified"):
                return
            data["maildesk.cron_notified"] = True
        return super()._notifydb()
