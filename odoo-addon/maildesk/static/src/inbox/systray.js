/** @odoo-module **/
// Unread mail of the user's MailDesk mailboxes, in the navbar; opens the inbox.
import { Component, onWillStart, useState } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { user } from "@web/core/user";
import { useService } from "@web/core/utils/hooks";

export class MailDeskSystray extends Component {
    static template = "maildesk.Systray";
    static props = {};

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        // Counts live in the maildesk_live service: the bus notices and the
        // inbox (mail read there) keep them right.
        this.live = useState(useService("maildesk_live").state);
        this.liveService = useService("maildesk_live");
        this.state = useState({ visible: false });
        onWillStart(async () => {
            this.state.visible = await user.hasGroup("maildesk.group_maildesk_user");
            if (this.state.visible) {
                const boxes = await this.orm.call("maildesk.mailbox", "maildesk_inbox_mailboxes", []);
                this.liveService.setMailboxes(boxes);
            }
        });
    }

    get unread() {
        return this.live.total;
    }

    open() {
        this.action.doAction("maildesk.maildesk_inbox_action");
    }
}

registry.category("systray").add("maildesk.unread", { Component: MailDeskSystray }, { sequence: 35 });
