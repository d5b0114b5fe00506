"""Issuing invoices and credit notes. Contract (implemented by the invoices work); each is called
inside the caller's transaction (the purchase or plan payment it bills) and is idempotent by key:

    invoice_issue_for_purchase(*, purchase) -> Invoice
    invoice_issue_for_plan_payment(*, workspace, plan, amount_cents, period_start, period_end,
                                   stripe_invoice_id) -> Invoice
    credit_note_issue_for_refund(*, invoice, amount_cents, reason, key) -> Invoice
"""


def invoice_issue_for_purchase(*, purchase):
    return None


def invoice_issue_for_plan_payment(*, workspace, plan, amount_cents, period_start, period_end, stripe_invoice_id):
    return None


def credit_note_issue_for_refund(*, invoice, amount_cents, reason, key):
    return None
