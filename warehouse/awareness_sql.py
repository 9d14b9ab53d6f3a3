"""Hourly SQL of the awareness metrics that are computed rather than read: `linkedin.followers`, anchored on
the latest exact count, and `seo.share_of_voice`, estimated clicks shared among the configured brands.

Both select `(ts, dims, value)` per fact hour (`fact_hour`) for the hours in `affected_hours`, like every query in
`warehouse.metrics` (which dispatches here).
"""
from __future__ import annotations

from config import Config

# Share of a result's clicks by its organic position on the first page of Google: a typical curve, rounded
# from published click-through studies (position 1 about 28 %, 2 about 15 %, 3 about 11 %, down to about
# 2 % at 10). Results beyond the first page get next to no clicks and count as 0.
CTR_BY_POSITION = {1: 0.28, 2: 0.15, 3: 0.11, 4: 0.08, 5: 0.06, 6: 0.05, 7: 0.04, 8: 0.03, 9: 0.025, 10: 0.02}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def linkedin_followers_sql(cfg: Config, affected: str) -> str:
    """The latest exact count at its time, and for each earlier day (12:00 UTC) that count minus the gains
    of the days after it, up to the count's own day. LinkedIn's gains are gross (unfollows are not
    reported), so the reconstruction reads slightly low the further back it goes; each new exact count
    re-anchors the whole history (the source recomputes ALL_HOURS), which keeps today exact and the series one
    consistent line. Days with no gains stored are carried forward by the series query."""
    settings = cfg.sources.linkedin
    only = f"WHERE organization = {_literal('urn:li:organization:' + settings.organization_id)}" if settings else ""
    return f"""
        WITH gains AS (
            SELECT ts, organization, arg_max(organic_gain + paid_gain, fetched_at) AS gained
            FROM lake.raw_linkedin_follower_gains {only} GROUP BY ts, organization),
        anchor AS (
            SELECT organization, max(ts) AS ts, arg_max(followers, ts) AS followers
            FROM lake.raw_linkedin_followers {only} GROUP BY organization),
        points AS (
            SELECT ts, followers AS value FROM anchor
            UNION ALL
            SELECT g.ts, a.followers - coalesce(sum(g.gained) OVER (
                       PARTITION BY g.organization ORDER BY g.ts DESC
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
            FROM gains g JOIN anchor a USING (organization)
            WHERE epoch(g.ts) // 86400 < epoch(a.ts) // 86400)      -- UTC days before the count's day
        SELECT fact_hour(ts) AS ts, '{{}}' AS dims, arg_max(value, ts) AS value
        FROM points WHERE {affected} GROUP BY 1"""


def seo_share_of_voice_sql(cfg: Config, affected: str) -> str:
    """Per day (all of a day's rankings carry 12:00 UTC) and configured brand: 100 x the brand's estimated
    clicks / all configured brands' estimated clicks, where a ranking's clicks are search volume x CTR of
    its position and a brand's domains include their subdomains. Brands without a ranking get 0; a day on
    which no configured brand has any estimated clicks has no share of voice (the series carries the
    previous day). Should two providers report the same keyword and domain on a day, one is used."""
    brands = cfg.sources.seo.brands if cfg.sources.seo else {}
    if not brands:
        return "SELECT NULL::TIMESTAMPTZ AS ts, NULL::VARCHAR AS dims, NULL::DOUBLE AS value WHERE FALSE"
    ctr = ", ".join(f"({position}, {rate})" for position, rate in CTR_BY_POSITION.items())
    brand_domains = ", ".join(f"({_literal(brand)}, {_literal(domain)})"
                              for brand, domains in brands.items() for domain in domains)
    return f"""
        WITH ctr(position, rate) AS (VALUES {ctr}),
        brand_domains(brand, domain) AS (VALUES {brand_domains}),
        ranks AS (
            SELECT ts, keyword, domain, position, search_volume FROM lake.raw_seo WHERE {affected}
            QUALIFY row_number() OVER (PARTITION BY ts, keyword, domain ORDER BY provider) = 1),
        clicks AS (
            SELECT r.ts, b.brand, sum(r.search_volume * coalesce(c.rate, 0)) AS clicks
            FROM ranks r JOIN brand_domains b ON r.domain = b.domain OR ends_with(r.domain, '.' || b.domain)
            LEFT JOIN ctr c ON c.position = r.position
            GROUP BY ALL),
        days AS (SELECT ts, sum(clicks) AS total FROM clicks GROUP BY ts HAVING sum(clicks) > 0)
        SELECT fact_hour(d.ts) AS ts, json_object('brand', b.brand)::VARCHAR AS dims,
               100.0 * coalesce(c.clicks, 0) / d.total AS value
        FROM days d CROSS JOIN (SELECT DISTINCT brand FROM brand_domains) b
        LEFT JOIN clicks c ON c.ts = d.ts AND c.brand = b.brand"""
