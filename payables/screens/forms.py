"""The one form of the approval screens: a decision with a comment."""

from __future__ import annotations

from typing import Any

from django import forms

APPROVE = "approve"
REJECT = "reject"


class DecisionForm(forms.Form):
    """Approve or reject (the button pressed), with a comment; a rejection says why."""

    decision = forms.ChoiceField(choices=[(APPROVE, "Approve"), (REJECT, "Reject")])
    comment = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 500}),
        help_text="Recorded with your decision. Required to reject.",
    )
    # The version of the document the page showed (see DocumentScreen.version).
    version = forms.CharField(max_length=64, widget=forms.HiddenInput)
    accept_match_exception = forms.BooleanField(
        required=False,
        label="I have checked the match exception and accept it",
    )

    def __init__(self, *args: Any, match_exception: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        if not match_exception:
            del self.fields["accept_match_exception"]

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if data is not None and data.get("decision") == REJECT and not data.get("comment"):
            self.add_error("comment", "Say why you reject it.")
        return data
