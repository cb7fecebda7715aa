<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<!-- Studiolo's translation catalogue: every user-visible string goes through Qt's tr(). Regenerate with
     `pyside6-lupdate desktop -ts resources/translations/studiolo_LANG.ts`, translate with Qt Linguist, and compile
     to studiolo_LANG.qm with `pyside6-lrelease`; the app loads studiolo_<system locale>.qm at start. -->
<TS version="2.1">
</TS>
