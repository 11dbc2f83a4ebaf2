from django import forms
from django.utils.translation import gettext, gettext_lazy

from apps.consent.models import (
    CHANGE_TEXT_FIELDS,
    NOTICE_TEXT_FIELDS,
    PURPOSE_TEXT_FIELDS,
    NoticeChange,
    PrivacyNotice,
    Purpose,
)
from apps.core.i18n import language_others

# A customer's whole bundle of receipts fits many times over.
RECEIPT_MAX_BYTES = 512 * 1024


class ReceiptVerifyForm(forms.Form):
    # Anyone checks a receipt (a customer page): its words are translated.
    receipt = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
        label=gettext_lazy("Paste a receipt"),
        help_text=gettext_lazy("One receipt, or the whole file you downloaded."),
    )
    file = forms.FileField(required=False, label=gettext_lazy("Or upload the file"))

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > RECEIPT_MAX_BYTES:
                raise forms.ValidationError(
                    gettext("The file is over %(kb)s KB: not a receipt file.")
                    % {"kb": RECEIPT_MAX_BYTES // 1024}
                )
            raw = upload.read(RECEIPT_MAX_BYTES + 1)
        else:
            raw = (data.get("receipt") or "").encode()
        if not raw.strip():
            raise forms.ValidationError(gettext("Paste a receipt or upload the file."))
        if len(raw) > RECEIPT_MAX_BYTES:
            raise forms.ValidationError(
                gettext("That is over %(kb)s KB: not a receipt file.")
                % {"kb": RECEIPT_MAX_BYTES // 1024}
            )
        data["raw"] = raw
        return data


class TranslationsForm(forms.ModelForm):
    """Staff write a text per language: one field per language and text (`name_id`,
    `description_de`, ...) beside the English source, kept in the model's
    `translations`. A language is written whole or left out: one text of it blank
    while another is written is an error on the blank field. Made by
    `translations_form`."""

    text_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        saved = getattr(self.instance, "translations", None) or {}
        for code, _language in language_others():
            for field in self.text_fields:
                self.initial.setdefault(
                    f"{field}_{code}", saved.get(code, {}).get(field, "")
                )

    def clean(self):
        data = super().clean()
        self.instance.translations = _translations_clean(self, data, self.text_fields)
        return data


def _translations_clean(
    form: forms.Form, data: dict, text_fields: tuple[str, ...]
) -> dict[str, dict[str, str]]:
    translations = {}
    for code, language in language_others():
        texts = {
            field: (data.get(f"{field}_{code}") or "").strip() for field in text_fields
        }
        if not any(texts.values()):
            continue
        missing = [field for field, text in texts.items() if not text]
        for field in missing:
            form.add_error(
                f"{field}_{code}",
                f"Write every text in {language}, or none: customers get one "
                "whole language, never a mix.",
            )
        if not missing:
            translations[code] = texts
    return translations


LONG_FIELDS = ("description", "summary", "body")


def _translation_fields(text_fields: tuple[str, ...]) -> dict[str, forms.Field]:
    fields: dict[str, forms.Field] = {}
    for code, language in language_others():
        for field in text_fields:
            widget_attrs = {"lang": code, "dir": "auto"}
            label = field.replace("_", " ").capitalize()
            fields[f"{field}_{code}"] = forms.CharField(
                required=False,
                label=f"{label} ({language})",
                widget=forms.Textarea(attrs={"rows": 3, **widget_attrs})
                if field in LONG_FIELDS
                else forms.TextInput(attrs=widget_attrs),
            )
    return fields


def translations_form(model, text_fields: tuple[str, ...]) -> type[TranslationsForm]:
    """A ModelForm of `model` with a field per other language for each text."""
    attrs: dict = {"text_fields": text_fields, **_translation_fields(text_fields)}
    attrs["Meta"] = type("Meta", (), {"model": model, "exclude": ("translations",)})
    return type(f"{model.__name__}AdminForm", (TranslationsForm,), attrs)


def translations_fields_form(text_fields: tuple[str, ...]) -> type[forms.Form]:
    """A plain form base with a field per other language for each text; its
    `cleaned_data["translations"]` is {language: {text: ...}}, each language whole
    (half a language is an error on the missing field). `translations_initial` turns
    saved translations into its initial values."""

    class Texts(forms.Form):
        def clean(self):
            data = super().clean()
            data["translations"] = _translations_clean(self, data, text_fields)
            return data

    for name, field in _translation_fields(text_fields).items():
        Texts.base_fields[name] = field
        Texts.declared_fields[name] = field
    return Texts


def translations_initial(
    translations: dict, text_fields: tuple[str, ...]
) -> dict[str, str]:
    return {
        f"{field}_{code}": (translations or {}).get(code, {}).get(field, "")
        for code, _language in language_others()
        for field in text_fields
    }


PurposeAdminForm = translations_form(Purpose, PURPOSE_TEXT_FIELDS)
PrivacyNoticeAdminForm = translations_form(PrivacyNotice, NOTICE_TEXT_FIELDS)
NoticeChangeAdminForm = translations_form(NoticeChange, CHANGE_TEXT_FIELDS)
