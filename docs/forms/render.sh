#!/usr/bin/env bash
# Renders the pictures of docs/official-forms.md: Biểu 06 (official Q1 2026, by field) and
# the Decision 766 summary of the golden fixture in their official form, page 1 of each
# PDF as PNG. Needs a built binary (cargo build) and Debian's poppler-utils (pdftoppm).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${BIN:-target/debug/giamsat}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data="$work/data"
"$bin" --data "$data" ingest --format procedures fixtures/golden/procedures.csv >/dev/null
"$bin" --data "$data" ingest fixtures/golden/events.ndjson >/dev/null
cat >"$data/config.toml" <<'TOML'
[report]
unit_name = "UBND thành phố Hải Phòng"
receiving_unit = "Văn phòng Chính phủ"
signer = "Nguyễn Văn A"
signer_title = "KT. CHỦ TỊCH"
preparer = "Trần Thị B"
place = "Hải Phòng"
TOML
"$bin" --data "$data" report bieu06 --from 2025-12-15 --to 2026-03-14 --format pdf -o "$work/bieu06.pdf"
"$bin" --data "$data" report 766 --period 2026-Q1 --format pdf -o "$work/766.pdf"
pdftoppm -png -r 90 -f 1 -l 1 -singlefile "$work/bieu06.pdf" docs/forms/bieu06
pdftoppm -png -r 90 -f 1 -l 1 -singlefile "$work/766.pdf" docs/forms/index766
echo "docs/forms/bieu06.png docs/forms/index766.png"
