"""Reports: a dashboard's widgets evaluated over a range (`reports.model`), as a PDF (`reports.pdf`) or an Excel
workbook (`reports.workbook`). The dashboard's Reports page and the alerts' digests both use them, so they
import only `warehouse` and `config`."""
