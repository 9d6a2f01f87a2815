/** @odoo-module **/
// The inbox's actions on mail, without the component: keyboard shortcuts,
// the folders offered by "Move to…", the selection grouped per mailbox and
// the attachments as Odoo's file viewer takes them. Hoot tests these
// (static/tests/maildesk_inbox.test.js).

import { _t } from "@web/core/l10n/translation";

/** The shortcuts, as the help popover lists them. */
export function shortcutList() {
    return [
        { keys: ["j", "↓"], label: _t("Next message") },
        { keys: ["k", "↑"], label: _t("Previous message") },
        { keys: ["r"], label: _t("Reply") },
        { keys: ["a"], label: _t("Reply all") },
        { keys: ["f"], label: _t("Forward") },
        { keys: ["e"], label: _t("Archive") },
        { keys: ["Delete", "#"], label: _t("Delete") },
        { keys: ["x"], label: _t("Select or unselect the message") },
        { keys: ["?"], label: _t("Show these shortcuts") },
    ];
}

const KEYS = {
    j: "next",
    ArrowDown: "next",
    k: "previous",
    ArrowUp: "previous",
    r: "reply",
    a: "reply_all",
    f: "forward",
    e: "archive",
    Delete: "delete",
    "#": "delete",
    x: "toggle",
    "?": "help",
    Escape: "escape",
};

/**
 * The inbox action a key press asks for, or "" when the key is not a
 * shortcut here: typed into a field, with a modifier (Ctrl/Alt/Meta are the
 * browser's and Odoo's), or while a dialog is open.
 */
export function shortcutFor(ev, { dialogOpen = false } = {}) {
    if (dialogOpen || ev.ctrlKey || ev.metaKey || ev.altKey || ev.isComposing) {
        return "";
    }
    const target = ev.target;
    if (target && target.closest && target.closest("input, textarea, select, [contenteditable], .o-dropdown--menu")) {
        return "";
    }
    return KEYS[ev.key] || "";
}

/** Folders of a mailbox's tree as "Move to…" offers them: indented by depth, the current one left out. */
export function folderOptions(tree, current) {
    return (tree || [])
        .filter((f) => f.id !== current && f.well_known !== "msgfolderroot")
        .map((f) => ({ id: f.id, label: f.name, depth: Math.min(f.depth || 0, 6), path: f.path || f.name }));
}

/** Messages grouped by mailbox: {mailboxId: [message, ...]}, in list order. */
export function groupByMailbox(messages, fallbackMailboxId) {
    const groups = new Map();
    for (const message of messages) {
        const box = message.mailbox_id || fallbackMailboxId;
        if (!groups.has(box)) {
            groups.set(box, []);
        }
        groups.get(box).push(message);
    }
    return groups;
}

const IMAGES = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"];

/**
 * An attachment of a mail as Odoo's file viewer takes a file: shown from
 * the MailDesk route (which checks the user's access to the mailbox and
 * answers under a sandboxing CSP), no ir.attachment made. Images and PDFs
 * are viewable; SVG is not (it can carry script).
 */
export function viewerFile(att) {
    const type = (att.content_type || "").toLowerCase().split(";")[0].trim();
    const isImage = IMAGES.includes(type);
    const isPdf = type === "application/pdf";
    return {
        id: att.id,
        name: att.name,
        displayName: att.name,
        mimetype: type,
        isImage,
        isPdf,
        isViewable: isImage || isPdf,
        downloadUrl: att.url,
        defaultSource: isPdf
            ? `/web/static/lib/pdfjs/web/viewer.html?file=${encodeURIComponent(att.url)}#pagemode=none`
            : att.url,
    };
}
