"""Forms of the study pages: what the worker types, validated on the server."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

OTHER = "other"

EDUCATION_CHOICES = [
    ("", _("Choose one")),
    ("less_than_high_school", _("Less than high school")),
    ("high_school", _("High school or equivalent")),
    ("some_college", _("Some college, no degree")),
    ("associate", _("Associate degree")),
    ("bachelor", _("Bachelor's degree")),
    ("master", _("Master's degree")),
    ("doctorate", _("Doctorate or professional degree")),
    ("prefer_not", _("Prefer not to say")),
]
RACE_CHOICES = [
    ("", _("Choose one")),
    ("asian", _("Asian")),
    ("black", _("Black or African American")),
    ("hispanic", _("Hispanic or Latino")),
    ("native_american", _("American Indian or Alaska Native")),
    ("pacific_islander", _("Native Hawaiian or Pacific Islander")),
    ("white", _("White")),
    ("multiple", _("More than one")),
    ("prefer_not", _("Prefer not to say")),
    (OTHER, _("Other (please describe)")),
]
GENDER_CHOICES = [
    ("", _("Choose one")),
    ("female", _("Female")),
    ("male", _("Male")),
    ("non_binary", _("Non-binary")),
    ("prefer_not", _("Prefer not to say")),
    (OTHER, _("Other (please describe)")),
]
LIKERT = [(i, str(i)) for i in range(1, 6)]


class LabEntryForm(forms.Form):
    worker_id = forms.CharField(
        label=_("Worker ID"), max_length=128, strip=True,
        help_text=_("The ID you were given for this study."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )


class TopicChoiceForm(forms.Form):
    topics = forms.TypedMultipleChoiceField(
        label=_("Topics"), coerce=int, widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Please choose at least one topic.")},
    )

    def __init__(self, *args: Any, topics: list, max_topics: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["topics"].choices = [(t.pk, t.title) for t in topics]
        self.max_topics = max_topics

    def clean_topics(self) -> list[int]:
        value = self.cleaned_data["topics"]
        if len(value) > self.max_topics:
            raise forms.ValidationError(_("Please choose at most %(n)d topics.") % {"n": self.max_topics})
        return value


class ConsentForm(forms.Form):
    consent = forms.BooleanField(
        label=_("I have read the information above and agree to take part, including the use of my webcam "
                "for eye tracking."),
        error_messages={"required": _("You need to tick this box to take part. If you do not want to take "
                                      "part, you can close this page.")},
    )


class DemographicsForm(forms.Form):
    age = forms.IntegerField(
        label=_("Age"), validators=[MinValueValidator(18), MaxValueValidator(122)],
        error_messages={"min_value": _("You must be at least 18 to take part."),
                        "max_value": _("Please enter an age of at most 122.")},
    )
    location = forms.CharField(label=_("Country you live in"), max_length=100)
    education = forms.ChoiceField(label=_("Highest level of education"), choices=EDUCATION_CHOICES)
    race = forms.ChoiceField(label=_("Race or ethnicity"), choices=RACE_CHOICES)
    race_other = forms.CharField(label=_("Race or ethnicity (other)"), max_length=90, required=False)
    gender = forms.ChoiceField(label=_("Gender"), choices=GENDER_CHOICES)
    gender_other = forms.CharField(label=_("Gender (other)"), max_length=90, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("race", "gender"):
            other = (data.get(f"{name}_other") or "").strip()
            if data.get(name) == OTHER:
                if not other:
                    self.add_error(f"{name}_other", _("Please describe, or choose another option."))
                else:
                    data[name] = f"{OTHER}: {other}"
        return data


class SummaryForm(forms.Form):
    summary = forms.CharField(
        label=_("In a few sentences, what did you learn in this conversation?"),
        min_length=20, max_length=5000, widget=forms.Textarea(attrs={"rows": 6}),
    )


class UnderstandingForm(forms.Form):
    understand_before = forms.TypedChoiceField(
        label=_("How well did you understand the topic before the conversation? (1 = not at all, 5 = very well)"),
        choices=LIKERT, coerce=int, widget=forms.RadioSelect,
    )
    understand_after = forms.TypedChoiceField(
        label=_("How well do you understand the topic now? (1 = not at all, 5 = very well)"),
        choices=LIKERT, coerce=int, widget=forms.RadioSelect,
    )


class SentenceForm(forms.Form):
    copy_sentence = forms.CharField(
        label=_("Copy the most important sentence from one of the answers (either side)"),
        max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
    )
    feedback = forms.CharField(
        label=_("Feedback about this task (optional)"), max_length=5000, required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


POST_FORMS = {"summary": SummaryForm, "understanding": UnderstandingForm, "sentence": SentenceForm}
