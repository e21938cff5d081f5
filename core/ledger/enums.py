from django.db import models


class AccountType(models.TextChoices):
    ASSET = "asset", "Asset"
    LIABILITY = "liability", "Liability"
    EQUITY = "equity", "Equity"
    INCOME = "income", "Income"
    EXPENSE = "expense", "Expense"


class AccountRole(models.TextChoices):
    """The accounts the domains post to, found by role rather than by a hard-coded code."""

    CASH = "cash", "Bank and cash"
    PROCESSOR_CLEARING = "processor_clearing", "Processor clearing"
    # Joins the two legs of a processor's currency conversion (PayPal converting a EUR payment
    # into USD): its balance per currency is what was converted, worth zero in the functional
    # currency once each conversion's difference is taken to realized FX gain/loss.
    PROCESSOR_CONVERSION = "processor_conversion", "Processor currency conversion"
    ACCOUNTS_RECEIVABLE = "accounts_receivable", "Accounts receivable"
    ACCOUNTS_PAYABLE = "accounts_payable", "Accounts payable"
    INVENTORY = "inventory", "Inventory"
    PURCHASE_DISCOUNTS = "purchase_discounts", "Early-payment discounts taken"
    REVENUE = "revenue", "Revenue"
    TAX_PAYABLE = "tax_payable", "Tax payable"
    LATE_FEE_INCOME = "late_fee_income", "Late-fee income"
    BAD_DEBT = "bad_debt", "Bad debt expense"
    FX_GAIN_LOSS = "fx_gain_loss", "Realized FX gain/loss"
    PROCESSOR_FEES = "processor_fees", "Processor fees"
    BANK_FEES = "bank_fees", "Bank fees"
    CUSTOMER_CREDIT = "customer_credit", "Customer credit balances"
    SUSPENSE = "suspense", "Suspense"
    EXPENSES = "expenses", "Operating expenses"
    EQUITY = "equity", "Owner's equity"
    ROUNDING = "rounding", "Rounding differences"


class ManualEntryStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    POSTED = "posted", "Posted"
    REJECTED = "rejected", "Rejected"
