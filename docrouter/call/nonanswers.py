"""Answers that are not answers: a short reply saying the document could not be read.

A recorded real reply said "I'm sorry, but I can't access or view the contents of the PDF file." while the
parse was attached (tests/fixtures/recorded/pdf_unreadable_reply.json). Such a reply is paid for but useless:
the call stage marks it `unreadable_reply` and tries once through another adequate engine.
"""

from __future__ import annotations

import dataclasses
import re

from docrouter import errors
from docrouter.call.dispatch import Attempted
from docrouter.catalogue import ModelInfo
from docrouter.inspect.inspection import Inspection
from docrouter.route.routing import adequate_engines
from docrouter.vocabulary import Engine, PdfEngine

MAX_REPLY_CHARS = 400  # a real answer that quotes such a phrase is longer than a refusal
# "cannot read/see/open/access" and its kin, in the languages archives are most often written in.
_CANNOT = (
    r"(can ?not|can't|unable to|not able to) (access|view|see|read|open|process|display)|(don't|do not) have access",
    r"ne (peux|parviens) pas (à )?(accéder|lire|ouvrir|voir|consulter)|impossible d'(accéder|ouvrir|lire)",
    r"n'ai pas accès",
    r"kann .{0,40}nicht (zugreifen|lesen|öffnen|sehen|anzeigen|einsehen)|keinen zugriff",
    r"no (puedo|logro) (acceder|leer|abrir|ver)|no tengo acceso",
    r"non (posso|riesco a|riesco ad) (accedere|leggere|aprire|vedere|visualizzare)|non ho accesso",
    r"não (consigo|posso) (acessar|aceder|ler|abrir|ver|visualizar)|não tenho acesso",
    r"kan .{0,40}niet (openen|lezen|bekijken|zien|inzien)|geen toegang",
)
_DOCUMENT = (
    r"(pdf|document|file|attachment|image|contents|fichier|pièce jointe|datei|dokument|anhang|bild|documento"
    r"|archivo|adjunto|imagen|allegato|immagine|ficheiro|arquivo|anexo|bestand|bijlage|afbeelding)"
)
_CANNOT_RE = re.compile("|".join(_CANNOT), re.IGNORECASE | re.DOTALL)
_DOCUMENT_RE = re.compile(_DOCUMENT, re.IGNORECASE)
# Engines to try instead, best first: the model reading the file itself, then OCR, then the text layer.
RETRY_ORDER: tuple[PdfEngine, ...] = ("native", "mistral-ocr", "local-text", "pdf-text")


def says_unreadable(content: str) -> bool:
    """True for a short reply that says the document could not be accessed, read, opened or seen."""
    text = content.strip().replace("\u2019", "'")
    if not 0 < len(text) <= MAX_REPLY_CHARS:
        return False
    return _CANNOT_RE.search(text) is not None and _DOCUMENT_RE.search(text) is not None


def other_engine(inspection: Inspection, model: ModelInfo, tried: Engine) -> PdfEngine | None:
    """Another engine adequate for this PDF and model than `tried`, or None when there is none."""
    adequate = set(adequate_engines(inspection, model))
    return next((e for e in RETRY_ORDER if e in adequate and e != tried), None)


def judged(attempted: Attempted) -> Attempted:
    """A paid answer that only says the document could not be read becomes an unreadable_reply failure."""
    completion = attempted.completion
    if completion is None or not says_unreadable(completion.content):
        return attempted
    error = errors.UnreadableReply(
        f"the reply says the document could not be read: {completion.content.strip()[:200]!r}",
        charged_usd=attempted.cost_usd,
        annotations=attempted.annotations,
    )
    return dataclasses.replace(attempted, completion=None, error=error)
