"""PDFs generated for the reader tests, each named by its quirk: a font only fontTools decodes, a file only
PDFium opens, a misplaced xref pypdf repairs (and complains about), a document slow to extract."""

from __future__ import annotations

import io

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.t2CharStringPen import T2CharStringPen

import samples
from pdfassembly import new_pdf

# LaTeX's cmsy10 puts these symbols at these codes; without its built-in encoding they read as "8", "9", "2".
MATH_SYMBOLS = {"8": "universal", "9": "existential", "2": "element"}  # ∀ ∃ ∈


def math_symbols_pdf() -> bytes:
    """One page drawing ∀∃∈ with an embedded CFF (Type1C) font whose own encoding maps 8, 9, 2 to them.

    No /ToUnicode and no /Encoding: only the font program says what the codes mean, and pypdf reads it with
    fontTools (without it the text comes out "892", as a LaTeX lecture's math did).
    """
    pdf = new_pdf()
    font_file = pdf.stream(b"/Subtype /Type1C", _cff_font())
    descriptor = pdf.add(b"<< /Type /FontDescriptor /FontName /CMSY10 /Flags 4 /FontFile3 %d 0 R >>" % font_file)
    font = pdf.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /CMSY10 /FontDescriptor %d 0 R >>" % descriptor)
    contents = pdf.stream(b"", b"BT /M1 24 Tf 72 700 Td (892) Tj ET")
    pdf.pages.append(
        pdf.add(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /M1 %d 0 R >> >> "
            b"/Contents %d 0 R >>" % (font, contents)
        )
    )
    return pdf.build()


def _cff_font() -> bytes:
    """A bare CFF font program with three glyphs and a custom built-in encoding."""
    names = [".notdef", *MATH_SYMBOLS.values()]
    builder = FontBuilder(1000, isTTF=False)
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({})
    outlines = {}
    for name in names:
        pen = T2CharStringPen(500, None)
        pen.moveTo((0, 0))
        pen.lineTo((400, 0))
        pen.lineTo((400, 600))
        pen.closePath()
        outlines[name] = pen.getCharString()
    builder.setupCFF("CMSY10", {"FullName": "CMSY10"}, outlines, {})
    cff = builder.font["CFF "].cff
    encoding = [".notdef"] * 256
    for code, name in MATH_SYMBOLS.items():
        encoding[ord(code)] = name
    cff.topDictIndex[0].Encoding = encoding
    out = io.BytesIO()
    cff.compile(out, builder.font)
    return out.getvalue()


def eof_missing_pdf(pages: int = 2) -> bytes:
    """A born-digital text PDF whose end-of-file marker is gone (a cut-off copy): pypdf rejects it, PDFium
    reads it (as it reads the corpus's T04_002_EOF-missing.pdf)."""
    return samples.text_pdf(pages).replace(b"%%EOF", b"")


def misplaced_xref(data: bytes) -> bytes:
    """The same PDF with its startxref pointing at the wrong offset (pypdf repairs it, and logs warnings)."""
    head, _, tail = data.rpartition(b"startxref\n")
    return head + b"startxref\n" + str(int(tail.split()[0]) - 7).encode() + b"\n%%EOF\n"


def slow_text_pdf(pages: int, lines_per_page: int = 400) -> bytes:
    """`pages` pages of dense text drawn one show operator per word, all sharing one content stream: small on
    disk, slow to extract (every page is read in full)."""
    words = b" ".join(b"(w%d) Tj 3 0 Td" % i for i in range(12))
    line = b"BT /F1 6 Tf 20 %d Td " + words + b" ET\n"
    content = b"".join(line % (780 - (i % 390) * 2) for i in range(lines_per_page))
    pdf = new_pdf()
    shared = pdf.stream(b"", content)
    font = pdf.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for _ in range(pages):
        pdf.pages.append(
            pdf.add(
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> "
                b"/Contents %d 0 R >>" % (font, shared)
            )
        )
    return pdf.build()
