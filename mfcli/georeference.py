"""Where the pixels of an image lie on the Earth: a coordinate reference system and an affine
transform (the GDAL/rasterio model, shared by GeoTIFF, ENVI ``map info`` and every GIS).

A :class:`Georeference` holds

- ``crs``: the coordinate reference system as WKT (any flavour GDAL reads: WKT1, WKT2, ESRI),
  or None where the file gives a transform but no CRS;
- ``transform``: the six coefficients ``(a, b, c, d, e, f)`` (rasterio's ``Affine`` order) that
  take the column and row of a pixel corner to map coordinates::

      x = a * col + b * row + c
      y = d * col + e * row + f

  ``(c, f)`` is the upper-left corner of the upper-left pixel; a north-up image has
  ``b = d = 0``, ``a`` the pixel width and ``e`` minus the pixel height.

It travels unchanged from the file read to the result file (``/input`` attributes ``crs`` and
``transform``) and to every image written from the result. This module is pure Python (no
NumPy, no GDAL): it also reads and writes ENVI ``map info`` and names the CRS of a WKT string
for ``mfcli info`` and the report, so ENVI georeferences work without the ``geo`` extra.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from mfcli.errors import DataError

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@dataclass(frozen=True)
class Georeference:
    """A CRS (WKT, or None) and the affine transform ``(a, b, c, d, e, f)`` of pixel corners
    to map coordinates (see the module docstring)."""

    crs: str | None
    transform: tuple[float, float, float, float, float, float]

    def __post_init__(self):
        values = tuple(float(v) for v in self.transform)
        if len(values) != 6 or not all(math.isfinite(v) for v in values):
            raise DataError(f"a georeference transform has six finite numbers, not {self.transform!r}")
        if values[0] * values[4] - values[1] * values[3] == 0:
            raise DataError(f"the georeference transform {values} is singular (zero pixel size)")
        object.__setattr__(self, "transform", values)
        object.__setattr__(self, "crs", self.crs.strip() if isinstance(self.crs, str) and self.crs.strip() else None)

    # ------------------------------------------------------------------ conversions

    @classmethod
    def from_gdal(cls, geotransform, crs: str | None = None) -> Georeference:
        """From GDAL's geotransform order ``(c, a, b, f, d, e)``."""
        c, a, b, f, d, e = (float(v) for v in geotransform)
        return cls(crs, (a, b, c, d, e, f))

    def to_gdal(self) -> tuple[float, float, float, float, float, float]:
        """GDAL's geotransform order ``(c, a, b, f, d, e)``."""
        a, b, c, d, e, f = self.transform
        return (c, a, b, f, d, e)

    def to_dict(self) -> dict[str, Any]:
        """``{"crs": WKT or None, "transform": [a, b, c, d, e, f]}`` (what a result file stores)."""
        return {"crs": self.crs, "transform": list(self.transform)}

    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> Georeference | None:
        if not value or value.get("transform") is None:
            return None
        return cls(value.get("crs"), tuple(value["transform"]))

    # ------------------------------------------------------------------ what people read

    @property
    def north_up(self) -> bool:
        return self.transform[1] == 0 and self.transform[3] == 0

    @property
    def pixel_size(self) -> tuple[float, float]:
        """(width, height) of a pixel in CRS units (lengths of the column and row steps)."""
        a, b, _, d, e, _ = self.transform
        return math.hypot(a, d), math.hypot(b, e)

    @property
    def crs_name(self) -> str | None:
        return wkt_summary(self.crs)["name"] if self.crs else None

    @property
    def epsg(self) -> int | None:
        return wkt_summary(self.crs)["epsg"] if self.crs else None

    def describe(self) -> dict[str, Any]:
        """CRS name and EPSG code (where the WKT names them), pixel size and units, the
        transform and the WKT: what ``mfcli info --json`` prints."""
        summary = wkt_summary(self.crs) if self.crs else {"name": None, "epsg": None, "units": None}
        return {"crs": summary["name"], "epsg": summary["epsg"], "units": summary["units"],
                "pixel_size": list(self.pixel_size), "north_up": self.north_up,
                "transform": list(self.transform), "crs_wkt": self.crs}

    def summary(self) -> str:
        """One line, e.g. ``WGS 84 / UTM zone 33N (EPSG:32633), pixels 30 x 30 metre``."""
        info = self.describe()
        if info["crs"] is None:
            crs = "no CRS (transform only)" if not self.crs else "CRS without a name"
        else:
            crs = info["crs"] + (f" (EPSG:{info['epsg']})" if info["epsg"] else "")
        width, height = info["pixel_size"]
        units = f" {info['units']}" if info["units"] else ""
        rotated = "" if self.north_up else ", rotated grid"
        return f"{crs}, pixels {width:.6g} x {height:.6g}{units}{rotated}"

    # ------------------------------------------------------------------ ENVI map info

    @classmethod
    def from_envi(cls, map_info: list[str] | str, coordinate_system: str | None = None) -> Georeference:
        """From an ENVI header's ``map info`` (and ``coordinate system string``, the WKT).

        The transform is read as GDAL's ENVI driver reads it (reference pixel, its map
        coordinates, pixel sizes, ``rotation=`` in degrees), so mfcli and a GIS agree. Without a
        coordinate system string, UTM and geographic WGS-84 map infos give their WKT here
        (others give no CRS: :func:`mfcli.io.envi.read_envi` then asks GDAL where rasterio is
        installed).
        """
        fields = _split_list(map_info)
        if len(fields) < 7:
            raise DataError(f"ENVI map info has {len(fields)} fields, fewer than the 7 it needs: {fields}")
        try:
            x_ref, y_ref, easting, northing, x_size, y_size = (float(v) for v in fields[1:7])
        except ValueError:
            raise DataError(f"ENVI map info has non-numeric fields among {fields[1:7]}") from None
        rotation = 0.0
        for item in fields:
            if item.lower().startswith("rotation="):
                rotation = float(item.split("=", 1)[1])
        r = -math.radians(rotation)
        a, b = math.cos(r) * x_size, -math.sin(r) * x_size
        d, e = -math.sin(r) * y_size, -math.cos(r) * y_size
        if abs(rotation) == 180.0:  # as GDAL, exact for an upside-down image
            a, b, d, e = x_size, 0.0, 0.0, y_size
        c = easting - (x_ref - 1) * x_size
        f = northing + (y_ref - 1) * y_size
        crs = coordinate_system.strip().strip("{}").strip() if coordinate_system else None
        return cls(crs or _wkt_from_map_info(fields), (a, b, c, d, e, f))

    def envi_map_info(self) -> list[str]:
        """The ``map info`` fields of this georeference (reference pixel 1,1 = the upper-left
        corner). UTM and geographic WGS 84 get ENVI's own projection names; any other CRS is
        ``Arbitrary`` and is defined by the ``coordinate system string`` written beside it
        (ENVI 5 and GDAL read that). A sheared transform cannot be written (DataError)."""
        a, b, c, d, e, f = self.transform
        x_size, y_size = math.hypot(a, b), math.hypot(d, e)
        r = math.atan2(-b, a)
        expected = (-math.sin(r) * y_size, -math.cos(r) * y_size)
        if not (math.isclose(d, expected[0], rel_tol=1e-9, abs_tol=1e-12 * y_size)
                and math.isclose(e, expected[1], rel_tol=1e-9, abs_tol=1e-12 * y_size)):
            raise DataError(f"the transform {self.transform} is sheared or flipped, which ENVI map info cannot "
                            "hold; write GeoTIFF instead (-o NAME.tif)")
        location = [_number(1), _number(1), _number(c), _number(f), _number(x_size), _number(y_size)]
        summary = wkt_summary(self.crs) if self.crs else {"name": None, "epsg": None, "units": None}
        name = summary["name"] or ""
        utm = re.fullmatch(r"WGS 84 / UTM zone (\d+)([NS])", name)
        if utm:
            fields = ["UTM", *location, utm.group(1), "North" if utm.group(2) == "N" else "South", "WGS-84",
                      "units=Meters"]
        elif summary["epsg"] == 4326:
            fields = ["Geographic Lat/Lon", *location, "WGS-84", "units=Degrees"]
        else:
            fields = ["Arbitrary", *location]
            units = ENVI_UNITS.get((summary["units"] or "").lower())
            if units:
                fields.append(f"units={units}")
        degrees = -math.degrees(r)
        if abs(degrees) > 1e-12:
            fields.append(f"rotation={_number(degrees)}")
        return fields


ENVI_UNITS = {"metre": "Meters", "meter": "Meters", "metres": "Meters", "meters": "Meters",
              "degree": "Degrees", "degrees": "Degrees", "foot": "Feet", "us survey foot": "Feet",
              "kilometre": "Km", "kilometer": "Km"}


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) or abs(value) >= 1e15 else str(int(value))


def _split_list(value: list[str] | str) -> list[str]:
    if isinstance(value, str):
        value = value.strip().strip("{}").split(",")
    return [str(v).strip() for v in value if str(v).strip()]


# --------------------------------------------------------------------------- WKT

def _wkt_nodes(wkt: str):
    """The nodes of a WKT string as (keyword, [children or quoted strings or numbers])."""
    tokens = re.findall(r'"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_]*|[-+0-9.eE]+|[\[\](),]', wkt)
    position = 0

    def parse():
        nonlocal position
        token = tokens[position]
        position += 1
        if token.startswith('"'):
            return token[1:-1].replace('""', '"')
        if position < len(tokens) and tokens[position] in "[(":
            position += 1
            children = []
            while position < len(tokens) and tokens[position] not in "])":
                if tokens[position] == ",":
                    position += 1
                    continue
                children.append(parse())
            position += 1
            return (token.upper(), children)
        return token

    return parse() if tokens else None


def wkt_summary(wkt: str | None) -> dict[str, Any]:
    """The name, EPSG code and linear (or angular) unit of the CRS a WKT string describes,
    read from its top-level node (WKT1 ``AUTHORITY``/``UNIT``, WKT2 ``ID``/``LENGTHUNIT``);
    None where absent or where the string is not WKT."""
    out: dict[str, Any] = {"name": None, "epsg": None, "units": None}
    if not wkt:
        return out
    try:
        node = _wkt_nodes(wkt)
    except IndexError:
        return out
    if not isinstance(node, tuple):
        return out
    keyword, children = node
    if keyword in ("COMPD_CS", "COMPOUNDCRS", "BOUNDCRS") and children:
        nested = [c for c in children if isinstance(c, tuple)]
        if nested:
            keyword, children = nested[0]
    if children and isinstance(children[0], str):
        out["name"] = children[0]
    units = []
    for child in children:
        if not isinstance(child, tuple):
            continue
        key, values = child
        if key in ("AUTHORITY", "ID") and len(values) >= 2 and str(values[0]).upper() == "EPSG":
            try:
                out["epsg"] = int(str(values[1]))
            except ValueError:
                pass
        elif key in ("UNIT", "LENGTHUNIT", "ANGLEUNIT") and values:
            units.append(values[0])
    if not units:  # WKT2 puts the unit inside the AXIS nodes
        for child in children:
            if isinstance(child, tuple) and child[0] == "AXIS":
                units.extend(v[1][0] for v in child[1] if isinstance(v, tuple) and v[0].endswith("UNIT") and v[1])
    out["units"] = str(units[-1]) if units else None
    return out


_WGS84_GEOGCS = ('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
                 'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],'
                 'UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]]')


def utm_wgs84_wkt(zone: int, north: bool) -> str:
    """WKT1 of WGS 84 / UTM zone ``zone`` (EPSG 326zz north, 327zz south)."""
    if not 1 <= zone <= 60:
        raise DataError(f"UTM zone {zone} does not exist (zones are 1-60)")
    code = (32600 if north else 32700) + zone
    return (f'PROJCS["WGS 84 / UTM zone {zone}{"N" if north else "S"}",{_WGS84_GEOGCS},AUTHORITY["EPSG","4326"]],'
            f'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],'
            f'PARAMETER["central_meridian",{6 * zone - 183}],PARAMETER["scale_factor",0.9996],'
            f'PARAMETER["false_easting",500000],PARAMETER["false_northing",{0 if north else 10000000}],'
            f'UNIT["metre",1,AUTHORITY["EPSG","9001"]],AXIS["Easting",EAST],AXIS["Northing",NORTH],'
            f'AUTHORITY["EPSG","{code}"]]')


WGS84_WKT = f'{_WGS84_GEOGCS},AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]'


def _wkt_from_map_info(fields: list[str]) -> str | None:
    """The WKT of a UTM or geographic map info on the WGS-84 datum (ENVI's commonest), else None."""
    name = fields[0].lower()
    extra = [f for f in fields[7:] if "=" not in f]
    if name.startswith("utm") and len(extra) >= 3 and extra[2].upper() == "WGS-84":
        try:
            return utm_wgs84_wkt(int(extra[0]), extra[1].lower() != "south")
        except ValueError:
            return None
    if name.startswith("geographic lat") and extra and extra[0].upper() == "WGS-84":
        return WGS84_WKT
    return None
