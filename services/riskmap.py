"""风险地图: children per village and level, now or as they stood on a past date, and the village
boundaries (GeoJSON) the map draws."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from choices import Level
from models import Village, db
from services import indicators
from services.scoping import scope
from services.validation import InvalidInput

NONE = indicators.NONE  # not assessed (yet, or by that date)
GEOMETRY_TYPES = {"Polygon", "MultiPolygon"}
NAME_KEYS = ("name", "NAME", "名称", "村名", "village")


def level_counts(village_ids, *, category_id: int | None = None, as_of: dt.date | None = None):
    """{(village_id, level or "none"): children} for the children in register then, at their level
    then: the indicators' reading of the register (services/indicators.py), so the map, the 工作台 and
    the reports count the same children."""
    frame = indicators.Frame.as_of(as_of, village_ids)
    return {key: n for key, n in indicators.level_distribution(frame, category_id).items() if n}


def risk_index(counts: dict) -> float | None:
    """0 (all green) … 100 (all red), over the assessed children; None when nobody is assessed."""
    assessed = sum(counts.get(level.value, 0) for level in Level)
    if not assessed:
        return None
    weighted = sum(level.rank * counts.get(level.value, 0) for level in Level)
    return round(100 * weighted / (3 * assessed), 1)


def village_levels(
    village_ids, *, category_id: int | None = None, as_of: dt.date | None = None
) -> list[dict]:
    """One row per village in scope: position, boundary flag, counts per level, total, risk index."""
    counts = level_counts(village_ids, category_id=category_id, as_of=as_of)
    villages = db.session.execute(
        scope(
            select(Village.id, Village.name, Village.lon, Village.lat, Village.boundary.is_not(None)),
            Village,
            village_ids,
        ).order_by(Village.sort_order, Village.id)
    ).all()
    rows = []
    for village_id, name, lon, lat, has_boundary in villages:
        row_counts = {key: counts.get((village_id, key), 0) for key in [lv.value for lv in Level] + [NONE]}
        rows.append(
            {
                "village_id": village_id,
                "name": name,
                "lon": lon,
                "lat": lat,
                "has_boundary": bool(has_boundary),
                "counts": row_counts,
                "total": sum(row_counts.values()),
                "risk_index": risk_index(row_counts),
            }
        )
    return rows


def village_geojson(village_ids) -> dict:
    """A FeatureCollection of the villages in scope that have a boundary."""
    features = []
    for village_id, name, boundary in db.session.execute(
        scope(
            select(Village.id, Village.name, Village.boundary).where(Village.boundary.is_not(None)),
            Village,
            village_ids,
        ).order_by(Village.sort_order, Village.id)
    ):
        try:
            geometry = json.loads(boundary)
        except ValueError:
            continue
        features.append(
            {"type": "Feature", "properties": {"id": village_id, "name": name}, "geometry": geometry}
        )
    return {"type": "FeatureCollection", "features": features}


def _feature_name(feature: dict) -> str:
    props = feature.get("properties") or {}
    for key in NAME_KEYS:
        if props.get(key):
            return str(props[key]).strip()
    return ""


def _valid_geometry(geometry) -> bool:
    if not isinstance(geometry, dict) or geometry.get("type") not in GEOMETRY_TYPES:
        return False
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    try:
        for polygon in polygons:
            for ring in polygon:
                if len(ring) < 4:
                    return False
                for lon, lat, *_ in ring:
                    if not (-180 <= float(lon) <= 180 and -90 <= float(lat) <= 90):
                        return False
    except (TypeError, ValueError):
        return False
    return True


def import_boundaries(raw: bytes | str) -> tuple[list[str], list[str]]:
    """Store each feature's geometry as the boundary of the village of the same name.

    Returns (village names updated, feature names with no such village).
    """
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("文件不是有效的 GeoJSON（JSON 格式错误）") from None
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = {"type": "FeatureCollection", "features": [data]}
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not data.get("features"):
        raise InvalidInput("GeoJSON 中没有要素（应为 FeatureCollection，每个要素带 name 属性）")
    villages = {v.name: v for v in db.session.scalars(select(Village))}
    matched, unmatched = [], []
    for feature in data["features"]:
        name = _feature_name(feature) if isinstance(feature, dict) else ""
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not _valid_geometry(geometry):
            raise InvalidInput(f"要素“{name or '（无名称）'}”的几何不是有效的 Polygon 或 MultiPolygon")
        village = villages.get(name)
        if village is None:
            unmatched.append(name or "（无名称）")
            continue
        village.boundary = json.dumps(geometry, ensure_ascii=False, separators=(",", ":"))
        matched.append(name)
    if not matched:
        raise InvalidInput("没有一个要素的名称与已登记的村（社区）相符，未作修改：" + "、".join(unmatched))
    db.session.flush()
    return matched, unmatched
