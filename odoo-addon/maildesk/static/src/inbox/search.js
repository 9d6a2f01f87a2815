/** @odoo-module **/
// Search in the inbox: MailDesk's index answers at once (the synced window,
// subject, sender and the first 160 characters), Microsoft 365's own search
// (Graph $search through message.search) follows; the lists are merged.

/** The identity of a message across both answers. */
function keyOf(message) {
    return `${message.mailbox_id || ""}|${message.id}`;
}

function msgIdKey(message) {
    return message.internet_message_id ? `${message.mailbox_id || ""}|${message.internet_message_id}` : "";
}

/**
 * Local hits first-class, Graph's hits added when the list does not hold
 * them yet (same Graph id, or same Message-Id in the same mailbox); newest
 * first. Graph's hits are marked ``from_graph`` unless the index has them.
 */
export function mergeSearchResults(local, remote) {
    const seen = new Set();
    const out = [];
    for (const m of local || []) {
        seen.add(keyOf(m));
        if (msgIdKey(m)) {
            seen.add(msgIdKey(m));
        }
        out.push(m);
    }
    for (const m of remote || []) {
        if (seen.has(keyOf(m)) || (msgIdKey(m) && seen.has(msgIdKey(m)))) {
            continue;
        }
        seen.add(keyOf(m));
        if (msgIdKey(m)) {
            seen.add(msgIdKey(m));
        }
        out.push({ ...m, from_graph: !m.indexed });
    }
    out.sort((a, b) => String(b.received_at || "").localeCompare(String(a.received_at || "")));
    return out;
}
