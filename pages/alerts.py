"""Dashboard page: alert rules and their state, recent alert events, the outbox, and subscriptions, with a form
to subscribe or unsubscribe an address to a digest, failure alerts or one rule's alerts.

Everything is read from the state database through `warehouse` and `alerts` functions (the same the API's
/alerts/rules, /subscriptions and /outbox answer from). The dashboard has no login of its own, so addresses
are shown masked, as in the API.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

import config
from alerts.channels import mask
from alerts.outbox import notify_state
from alerts.rules import all_rules, describe
from alerts.unsubscribe import SubscriptionError, list_subscriptions, subscribe, unsubscribe
from dashboard import page
from warehouse.alert_store import AlertStore
from warehouse.notify_state import NotifyState
from warehouse.state import State

TOPICS = {"digest:daily": "Daily digest", "digest:weekly": "Weekly digest", "failures": "Source failure alerts"}


@st.cache_resource(show_spinner=False)
def _state(cfg: config.Config) -> tuple[NotifyState, AlertStore]:
    state = State(cfg)
    return notify_state(state), AlertStore(state)


def rules_table(cfg: config.Config, store: AlertStore) -> tuple[pd.DataFrame, list[str]]:
    states = {row["rule"]: row for row in store.alert_states()}
    stored = {row["name"] for row in store.rules()}
    rows, names = [], []
    for rule in all_rules(cfg, store):
        state = states.get(rule.name) or {}
        unit = cfg.catalog.metrics[rule.metric].unit if rule.metric in cfg.catalog.metrics else ""
        names.append(rule.name)
        rows.append({"rule": rule.name, "from": "API" if rule.name in stored else "config",
                     "watches": describe(rule, unit), "firing": bool(state.get("firing")),
                     "last bucket judged": state.get("last_bucket") or "–",
                     "recipients": ", ".join(mask(r) for r in rule.recipients) or "subscribers only"})
    return pd.DataFrame(rows), names


def subscription_form(notify: NotifyState, rule_names: list[str]) -> None:
    topics = {**TOPICS, **{f"rule:{name}": f"Rule: {name}" for name in rule_names}}
    with st.form("subscription"):
        address = st.text_input("E-mail address or phone number (E.164, e.g. +15555550123)", key="address")
        channel = st.radio("Channel", ["email", "sms"], horizontal=True, key="channel")
        topic = st.selectbox("What", list(topics), format_func=topics.get, key="topic")
        add, remove = st.columns(2)
        subscribing = add.form_submit_button("Subscribe")
        unsubscribing = remove.form_submit_button("Unsubscribe")
    if not (subscribing or unsubscribing):
        return
    try:
        if subscribing:
            sub = subscribe(notify, address, channel, topic)
            st.success(f"{mask(sub.address)} now gets {topics[topic].lower()} by {channel}.")
        else:
            sub, changed = unsubscribe(notify, address, channel, topic)
            st.success(f"{mask(sub.address)} gets no more {topics[topic].lower()} by {channel}."
                       + ("" if changed else " (It was unsubscribed already.)"))
    except SubscriptionError as exc:
        st.error(str(exc))


path, cfg = page.start("Alerts")
notify, store = _state(cfg)

st.subheader("Rules")
rules, names = rules_table(cfg, store)
if rules.empty:
    st.info("No alert rules yet: add `[[alerts.rules]]` to the config, or POST one to the API's /alerts/rules.")
else:
    st.dataframe(rules, hide_index=True, key="rules")

st.subheader("Recent events")
events = pd.DataFrame(notify.alert_events(limit=100))
if events.empty:
    st.caption("Nothing has fired yet.")
else:
    st.dataframe(events[["at", "rule", "kind", "bucket_start", "value", "message"]], hide_index=True, key="events")

st.subheader("Outbox")
messages = pd.DataFrame(notify.recent_messages(100))
if messages.empty:
    st.caption("No messages yet.")
else:
    messages["recipient"] = messages["recipient"].map(mask)
    failed = int(messages["status"].isin(["failed", "dead"]).sum())
    if failed:
        st.warning(f"{failed} of the latest {len(messages)} messages failed; their errors are in the table.")
    st.dataframe(messages[["created_at", "status", "channel", "recipient", "topic", "subject", "attempts",
                           "last_error", "sent_at"]], hide_index=True, key="outbox")

st.subheader("Subscriptions")
subscription_form(notify, names)          # before the list, so the list shows what the form just did
subscriptions = pd.DataFrame(list_subscriptions(notify, include_unsubscribed=True))
if subscriptions.empty:
    st.caption("No subscriptions yet.")
else:
    subscriptions["address"] = subscriptions["address"].map(mask)
    subscriptions["state"] = subscriptions["unsubscribed_at"].map(lambda t: "unsubscribed" if t else "subscribed")
    st.dataframe(subscriptions[["topic", "channel", "address", "state", "created_at"]], hide_index=True,
                 key="subscriptions")
