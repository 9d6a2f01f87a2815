/** @odoo-module **/
// Unread counts of the user's mailboxes and the sidecar's inbox notices.
// The sidecar tells Odoo when a mailbox's inbox changed (maildesk_notify);
// Odoo pushes {kind, mailbox_id, email, folder, count, unread} on its bus
// ("maildesk.inbox") to that mailbox's users. No polling from the browser.
import { reactive } from "@odoo/owl";
import { browser } from "@web/core/browser/browser";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";

export const BUS_TYPE = "maildesk.inbox";

export const maildeskLiveService = {
    dependencies: ["bus_service", "multi_tab"],
    start(env, { bus_service, multi_tab }) {
        // mailbox id → unread mail of its inbox (counts.unread of the sidecar)
        const state = reactive({ unread: {}, total: 0, notices: 0 });
        const listeners = new Set();

        function recount() {
            state.total = Object.values(state.unread).reduce((sum, n) => sum + (n || 0), 0);
        }

        function desktopNotify(notice) {
            // Only when the user allowed it, the page is not looked at, and
            // once per browser (the main tab).
            const N = browser.Notification;
            if (!N || N.permission !== "granted" || !document.hidden) {
                return;
            }
            if (multi_tab && multi_tab.isOnMainTab && !multi_tab.isOnMainTab()) {
                return;
            }
            const body =
                notice.count === 1
                    ? _t("1 new message in %s", notice.email)
                    : _t("%(count)s new messages in %(email)s", { count: notice.count, email: notice.email });
            try {
                new N(_t("New mail"), { body, tag: `maildesk-${notice.mailbox_id}` });
            } catch {
                // Some browsers only notify from a service worker: the list updates anyway.
            }
        }

        bus_service.subscribe(BUS_TYPE, (notice) => {
            if (!notice || !notice.mailbox_id) {
                return;
            }
            if (typeof notice.unread === "number") {
                state.unread[notice.mailbox_id] = notice.unread;
                recount();
            }
            state.notices++;
            if (notice.kind === "new_mail" && notice.count > 0) {
                desktopNotify(notice);
            }
            for (const listener of listeners) {
                listener(notice);
            }
        });

        return {
            state,
            /** Set the unread counts from a list of mailboxes ({id, unread}). */
            setMailboxes(mailboxes) {
                for (const mailbox of mailboxes) {
                    state.unread[mailbox.id] = mailbox.unread || 0;
                }
                recount();
            },
            /** Call listener(notice) for every notice; returns the unsubscribe function. */
            onNotice(listener) {
                listeners.add(listener);
                return () => listeners.delete(listener);
            },
        };
    },
};

registry.category("services").add("maildesk_live", maildeskLiveService);
