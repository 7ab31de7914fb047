"""Georeferenced scenes in and out: GeoTIFF and ENVI map info read, carried through the result
file, and written back as maps a GIS places where they belong; nodata pixels left out.

Every file is made here (no downloads). The GeoTIFF tests need rasterio (``pip install
'mfcli[geo]'``) and skip, saying so, without it; the ENVI map-info and Georeference tests run
without it.
"""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest

from mfcli.dataset import image_to_pixels, pixels_to_image
from mfcli.errors import DataError
from mfcli.georeference import WGS84_WKT, Georeference, utm_wgs84_wkt, wkt_summary

pytestmark = pytest.mark.filterwarnings("ignore:Dataset has no geotransform")  # rasterio, on plain grids

ROWS, COLS, BANDS, RANK = 9, 13, 8, 3  # not square, so a transposed map cannot pass
NODATA = -9999.0
# 30 m wide, 20 m high pixels (not square, so swapped axes cannot pass), UTM 33N.
TRANSFORM = (30.0, 0.0, 500000.0, 0.0, -20.0, 4200000.0)
EMPTY_PIXELS = [(0, 0), (0, 1), (8, 12), (4, 6)]  # nodata in every band
PARTLY_EMPTY_PIXEL = (2, 3)  # nodata in one band only: left out too


def needs_rasterio():
    return pytest.importorskip("rasterio", reason="GeoTIFF needs rasterio: pip install 'mfcli[geo]'")


def planted_scene(seed: int = 0):
    """A (bands, rows, cols) cube mixing RANK spectra, with nodata pixels, and its valid flags."""
    rng = np.random.default_rng(seed)
    spectra = rng.random((BANDS, RANK)) + 0.2
    abundances = rng.dirichlet(np.ones(RANK) * 0.5, size=ROWS * COLS).T
    abundances[:, :RANK] = np.eye(RANK)  # pure pixels (row 0, cols 2..4 after the first two empties)
    cube = (spectra @ abundances).reshape(BANDS, ROWS, COLS).astype(np.float32)
    valid = np.ones((ROWS, COLS), dtype=bool)
    for row, col in EMPTY_PIXELS:
        cube[:, row, col] = NODATA
        valid[row, col] = False
    cube[5, PARTLY_EMPTY_PIXEL[0], PARTLY_EMPTY_PIXEL[1]] = NODATA
    valid[PARTLY_EMPTY_PIXEL] = False
    return cube, valid


def utm_crs():
    from rasterio.crs import CRS

    return CRS.from_epsg(32633)


def write_scene(path, cube, *, crs=True, nodata=NODATA, names=True, wavelengths_um=True):
    rasterio = needs_rasterio()
    profile = {"driver": "GTiff", "height": ROWS, "width": COLS, "count": BANDS, "dtype": "float32"}
    if crs:
        profile.update(crs=utm_crs(), transform=rasterio.Affine(*TRANSFORM))
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(cube)
        if names:
            dst.descriptions = tuple(f"band {b + 1} ({450 + 50 * b} nm)" for b in range(BANDS))
        if wavelengths_um:
            for band in range(1, BANDS + 1):
                dst.update_tags(band, wavelength=str(0.4 + 0.05 * band), wavelength_units="Micrometers")
    return str(path)


@pytest.fixture
def scene(tmp_path):
    cube, valid = planted_scene()
    return write_scene(tmp_path / "scene.tif", cube), cube, valid


def read_back(path):
    rasterio = needs_rasterio()
    with rasterio.open(path) as src:
        return {"crs": src.crs, "transform": tuple(src.transform)[:6], "count": src.count, "nodata": src.nodata,
                "descriptions": src.descriptions, "data": src.read(), "dtypes": src.dtypes,
                "colormap": src.colormap(1) if src.dtypes[0] in ("uint8", "uint16") else None,
                "tags": src.tags()}


# --------------------------------------------------------------------------- reading

def test_geotiff_reads_as_a_cube_with_its_georeference_and_without_its_nodata_pixels(scene):
    from mfcli.io import load_dataset

    path, cube, valid = scene
    dataset = load_dataset(path)
    assert dataset.image_shape == (ROWS, COLS) and dataset.pixel_order == "C"
    assert dataset.georeference.transform == TRANSFORM
    assert dataset.georeference.epsg == 32633 and dataset.georeference.pixel_size == (30.0, 20.0)
    assert dataset.nodata == NODATA
    np.testing.assert_array_equal(dataset.valid_pixels, valid.ravel())
    assert dataset.n_samples == valid.sum() == ROWS * COLS - 5
    np.testing.assert_array_equal(dataset.X, cube.reshape(BANDS, -1)[:, valid.ravel()])
    assert not (dataset.X == NODATA).any()
    np.testing.assert_allclose(dataset.wavelengths, 400 + 50 * np.arange(1, BANDS + 1))
    assert dataset.feature_names[0] == "band 1 (450 nm)"
    # every map comes back the right way round, nodata pixels NaN
    images = dataset.to_image(dataset.X)
    np.testing.assert_array_equal(images[:, valid], cube[:, valid])
    assert np.isnan(images[:, ~valid]).all()


def test_fortran_pixel_order_keeps_the_nodata_flags_with_their_pixels(scene):
    from mfcli.io import load_dataset

    path, cube, valid = scene
    dataset = load_dataset(path, order="F")
    np.testing.assert_array_equal(dataset.valid_pixels, image_to_pixels(valid, "F"))
    np.testing.assert_array_equal(dataset.to_image(dataset.X)[:, valid], cube[:, valid])


def test_a_geotiff_without_georeference_or_nodata_reads_as_a_plain_cube(tmp_path):
    from mfcli.io import load_dataset

    cube, _ = planted_scene()
    cube[cube == NODATA] = 0.5
    path = write_scene(tmp_path / "plain.tif", cube, crs=False, nodata=None, names=False, wavelengths_um=False)
    dataset = load_dataset(path)
    assert dataset.georeference is None and dataset.nodata is None and dataset.valid_pixels is None
    assert dataset.n_samples == ROWS * COLS and dataset.wavelengths is None and dataset.feature_names is None


def test_a_common_gdal_band_scale_is_applied(tmp_path):
    rasterio = needs_rasterio()
    from mfcli.io import load_dataset

    stored = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4) * 100 + 1
    with rasterio.open(tmp_path / "s.tif", "w", driver="GTiff", height=3, width=4, count=2, dtype="int16") as dst:
        dst.write(stored)
        dst.scales = (1e-4, 1e-4)
    dataset = load_dataset(str(tmp_path / "s.tif"))
    np.testing.assert_allclose(dataset.X, stored.reshape(2, -1) * 1e-4)
    assert dataset.scale == pytest.approx(1e4)
    assert any("GDAL scale 0.0001" in note for note in dataset.notes)


def test_every_pixel_nodata_is_a_clear_error(tmp_path, invoke):
    cube = np.full((BANDS, ROWS, COLS), NODATA, dtype=np.float32)
    path = write_scene(tmp_path / "empty.tif", cube)
    result = invoke("info", path)
    assert result.exit_code == 1
    assert "every pixel" in result.stderr and "nodata" in result.stderr


def test_without_rasterio_the_error_names_the_extra(tmp_path, invoke, monkeypatch):
    import sys

    path = tmp_path / "scene.tif"
    path.write_bytes(b"II*\x00" + bytes(64))
    monkeypatch.setitem(sys.modules, "rasterio", None)
    result = invoke("info", str(path))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "pip install 'mfcli[geo]'" in result.stderr and "rasterio" in result.stderr


# --------------------------------------------------------------------------- the round trip

def test_geotiff_unmix_export_geotiff_and_envi_round_trip(scene, tmp_path, invoke):
    """The issue's round trip: GeoTIFF -> unmix -> export GeoTIFF and ENVI, read back with
    rasterio: same CRS and transform, one band per endmember named #1..#k, nodata where the
    input had none, the stored maps elsewhere."""
    from mfcli.io.result import read_result

    path, cube, valid = scene
    run = tmp_path / "run"
    result = invoke("unmix", path, "--ranks", "3,2", "-o", str(run), "--no-plots")
    assert result.exit_code == 0, result.stderr
    stored = read_result(run / "result.h5")
    assert stored.layers[0].H.shape[1] == valid.sum()
    assert stored.georeference.transform == TRANSFORM
    for layer, rank in ((1, 3), (2, 2)):
        tif, hdr = tmp_path / f"abundances{layer}.tif", tmp_path / f"abundances{layer}.hdr"
        for output in (tif, hdr):
            result = invoke("export", str(run / "result.h5"), "--factor", "abundances", "--layer", str(layer),
                            "-o", str(output))
            assert result.exit_code == 0, result.stderr
            assert "EPSG:32633" in result.stderr
        expected = pixels_to_image(stored.layer(layer).abundances, (ROWS, COLS), "C", stored.valid_pixels)
        for back in (read_back(tif), read_back(tmp_path / f"abundances{layer}.img")):
            assert back["crs"] == utm_crs()
            assert back["transform"] == pytest.approx(TRANSFORM)
            assert back["count"] == rank
            assert back["descriptions"] == tuple(f"#{k}" for k in range(1, rank + 1))
            assert math.isnan(back["nodata"])
            assert np.isnan(back["data"][:, ~valid]).all() and np.isfinite(back["data"][:, valid]).all()
            np.testing.assert_allclose(back["data"], expected)
    header = (tmp_path / "abundances1.hdr").read_text()
    assert "map info = { UTM , 1 , 1 , 500000 , 4200000 , 30 , 20 , 33 , North , WGS-84" in header
    assert "coordinate system string = {PROJCS[\"WGS 84 / UTM zone 33N\"" in header
    assert "band names = { #1 , #2 , #3 }" in header and "data ignore value = nan" in header


def test_cluster_maps_are_one_integer_band_with_a_colour_table(scene, tmp_path, invoke):
    from mfcli.io.result import read_result
    from mfcli.plotting.views import cluster_colors, hard_assignments

    path, _, valid = scene
    run = tmp_path / "run"
    assert invoke("unmix", path, "--ranks", "3,2", "-o", str(run), "--no-plots").exit_code == 0
    stored = read_result(run / "result.h5")
    for layer in (1, 2):
        output = tmp_path / f"clusters{layer}.tif"
        result = invoke("export", str(run / "result.h5"), "--factor", "assignments", "--layer", str(layer),
                        "-o", str(output))
        assert result.exit_code == 0, result.stderr
        back = read_back(output)
        assert back["count"] == 1 and back["dtypes"] == ("uint8",) and back["nodata"] == 0
        assert back["crs"] == utm_crs() and back["transform"] == pytest.approx(TRANSFORM)
        clusters = back["data"][0]
        assert (clusters[~valid] == 0).all()
        np.testing.assert_array_equal(clusters[valid], hard_assignments(stored, layer) + 1)  # C order
        colors = cluster_colors(stored, layer)
        for k, color in enumerate(colors, start=1):
            assert back["colormap"][k][:3] == tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
        assert back["colormap"][0][3] == 0  # "no cluster" is transparent
    result = invoke("export", str(run / "result.h5"), "--factor", "assignments", "-o", str(tmp_path / "c.hdr"))
    assert result.exit_code == 0, result.stderr
    header = (tmp_path / "c.hdr").read_text()
    assert "file type = ENVI Classification" in header and "class names = { none , #1 , #2 }" in header
    back = read_back(tmp_path / "c.img")
    assert back["crs"] == utm_crs() and sorted(back["colormap"]) == [0, 1, 2]


def test_material_names_name_the_bands(scene, tmp_path, invoke):
    from mfcli.io.maps import map_images, write_map_images
    from mfcli.io.result import read_result, write_result

    path, _, _ = scene
    run = tmp_path / "run"
    assert invoke("unmix", path, "--ranks", "3", "-o", str(run), "--no-plots").exit_code == 0
    stored = read_result(run / "result.h5")
    stored.layers[0].labels = ["soil", None, "water"]
    write_result(stored, tmp_path / "named.h5")
    maps = map_images(read_result(tmp_path / "named.h5"), "coefficients", 1)
    write_map_images(maps, str(tmp_path / "named.tif"), "tif", stored.georeference)
    assert read_back(tmp_path / "named.tif")["descriptions"] == ("soil", "#2", "water")


def test_a_scene_without_georeference_works_as_today(tmp_path, invoke):
    """sample:samson (no georeference, no nodata): unmix, CSV export unchanged, GeoTIFF maps on a
    plain pixel grid, info says nothing about a CRS."""
    run = tmp_path / "run"
    assert invoke("unmix", "sample:samson", "--ranks", "3", "-o", str(run), "--no-plots").exit_code == 0
    result = invoke("export", str(run / "result.h5"), "--factor", "abundances")
    assert result.exit_code == 0 and np.loadtxt(result.stdout.splitlines(), delimiter=",").shape == (3, 95 * 95)
    document = json.loads(invoke("info", str(run / "result.h5"), "--json").stdout)
    assert document["georeference"] is None
    assert "Georeference" not in invoke("info", "sample:samson").stderr
    needs_rasterio()
    result = invoke("export", str(run / "result.h5"), "--factor", "abundances", "-o", str(tmp_path / "a.tif"))
    assert result.exit_code == 0, result.stderr
    assert "no georeference" in result.stderr
    back = read_back(tmp_path / "a.tif")
    assert back["crs"] is None and back["nodata"] is None and back["count"] == 3
    assert np.isfinite(back["data"]).all()


def test_export_refuses_what_is_not_a_map(scene, tmp_path, invoke):
    path, _, _ = scene
    run = tmp_path / "run"
    assert invoke("unmix", path, "--ranks", "3,2", "-o", str(run), "--no-plots").exit_code == 0
    for args, message in ((["--factor", "W"], "holds spectra, not maps"),
                          (["--factor", "H", "--layer", "2"], "not one value per pixel"),
                          (["--factor", "abundances", "-o", "-", "--format", "tif"], "standard output")):
        if "-o" not in args:
            args = [*args, "-o", str(tmp_path / "x.tif")]
        result = invoke("export", str(run / "result.h5"), *args)
        assert result.exit_code == 1 and message in result.stderr, result.stderr
        assert not (tmp_path / "x.tif").exists()
    assert invoke("factorize", path, "--rank", "3", "-o", str(tmp_path / "nmf.h5")).exit_code == 0
    result = invoke("export", str(tmp_path / "nmf.h5"), "--factor", "assignments", "-o", str(tmp_path / "x.tif"))
    assert result.exit_code == 1 and "no hard assignments" in result.stderr
    result = invoke("export", str(tmp_path / "nmf.h5"), "--factor", "H", "-o", str(tmp_path / "h.tif"))
    assert result.exit_code == 0, result.stderr  # a single-layer H is the coefficient maps
    assert read_back(tmp_path / "h.tif")["transform"] == pytest.approx(TRANSFORM)


# --------------------------------------------------------------------------- convert, info, report

def test_convert_keeps_the_georeference_between_geotiff_envi_and_hdf5(scene, tmp_path, invoke):
    from mfcli.io import load_dataset

    path, cube, valid = scene
    chain = [path, str(tmp_path / "a.h5"), str(tmp_path / "b.hdr"), str(tmp_path / "c.tif")]
    for source, target in zip(chain, chain[1:]):
        result = invoke("convert", source, target)
        assert result.exit_code == 0, result.stderr
    original = load_dataset(path)
    for spec in chain[1:]:
        dataset = load_dataset(spec)
        assert dataset.georeference.transform == pytest.approx(TRANSFORM), spec
        assert wkt_summary(dataset.georeference.crs)["name"] == "WGS 84 / UTM zone 33N", spec
        assert dataset.nodata == NODATA
        np.testing.assert_array_equal(dataset.valid_pixels, valid.ravel())
        np.testing.assert_array_equal(dataset.X, original.X)
        np.testing.assert_allclose(dataset.wavelengths, original.wavelengths)
        assert dataset.feature_names == original.feature_names, spec
    back = read_back(chain[-1])
    assert back["crs"] == utm_crs() and back["nodata"] == NODATA
    np.testing.assert_array_equal(back["data"], cube)  # nodata pixels written back with the nodata value
    result = invoke("convert", path, str(tmp_path / "d.mat"))
    assert result.exit_code == 0 and "does not keep the georeference and nodata value" in result.stderr


def test_info_shows_the_crs_pixel_size_and_nodata(scene, tmp_path, invoke):
    path, _, valid = scene
    result = invoke("info", path)
    assert result.exit_code == 0, result.stderr
    assert "Georeference: WGS 84 / UTM zone 33N (EPSG:32633), pixels 30 x 20 metre" in result.stdout
    assert f"Nodata: value {NODATA}, {(~valid).sum()} pixels left out" in result.stdout
    data = json.loads(invoke("info", path, "--json").stdout)["data"]
    assert data["georeference"]["epsg"] == 32633 and data["georeference"]["pixel_size"] == [30.0, 20.0]
    assert data["georeference"]["transform"] == list(TRANSFORM)
    assert data["nodata"] == NODATA and data["nodata_pixels"] == (~valid).sum()
    assert data["min"] > 0  # the value range is of the pixels with data
    run = tmp_path / "run"
    assert invoke("unmix", path, "--ranks", "3", "-o", str(run), "--no-plots").exit_code == 0
    result = invoke("info", str(run / "result.h5"))
    assert "Georeference: WGS 84 / UTM zone 33N (EPSG:32633), pixels 30 x 20 metre" in result.stdout
    document = json.loads(invoke("info", str(run / "result.h5"), "--json").stdout)
    assert document["georeference"]["crs"] == "WGS 84 / UTM zone 33N"
    assert "valid_pixels" not in document["input"]


@pytest.mark.slow
def test_report_and_pictures_show_the_georeference_and_blank_nodata(scene, tmp_path, invoke):
    from mfcli.io.result import read_result
    from mfcli.plotting.views import as_images, layer_maps

    path, _, valid = scene
    run = tmp_path / "run"
    assert invoke("unmix", path, "--ranks", "3", "-o", str(run), "--no-plots").exit_code == 0
    result = invoke("plot-abundances", str(run / "result.h5"), "-o", str(tmp_path / "maps.png"))
    assert result.exit_code == 0, result.stderr
    stored = read_result(run / "result.h5")
    images = as_images(stored, layer_maps(stored, 1).values)
    assert np.isnan(images[:, ~valid]).all() and np.isfinite(images[:, valid]).all()
    result = invoke("report", str(run / "result.h5"), "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 0, result.stderr
    html = (tmp_path / "r.html").read_text()
    assert "WGS 84 / UTM zone 33N (EPSG:32633)" in html and "30 x 20 metre" in html
    assert "5 left out of the data" in html


# --------------------------------------------------------------------------- nodata everywhere

def test_nodata_pixels_stay_out_of_truth_and_endmember_positions(scene, tmp_path, invoke):
    import scipy.io

    from mfcli.io.result import read_result
    from mfcli.io.truth import load_truth_for_result

    path, cube, valid = scene
    result = invoke("endmembers", path, "--rank", "3", "--method", "spa", "-o", str(tmp_path / "e.h5"), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    stored = read_result(tmp_path / "e.h5")
    for k, (row, col) in enumerate(summary["pixels"]):
        assert valid[row, col]
        np.testing.assert_allclose(stored.layers[0].W[:, k], cube[:, row, col])  # the pixel named is the one chosen
    truth_cube = np.random.default_rng(1).random((ROWS, COLS, 3))
    scipy.io.savemat(tmp_path / "truth.mat", {"S_GT": truth_cube})
    truth = load_truth_for_result(str(tmp_path / "truth.mat"), stored)
    np.testing.assert_allclose(truth.abundances, np.moveaxis(truth_cube, 2, 0)[:, valid])


@pytest.mark.parametrize("engine", ["stream", "dask"])
def test_stream_and_dask_engines_refuse_nodata_with_a_clear_message(tmp_path, invoke, engine):
    if engine == "dask":
        pytest.importorskip("dask", reason="--engine dask needs the dask extra")
    X = np.random.default_rng(0).random((BANDS, ROWS * COLS))
    X[:, 3] = NODATA
    with h5py.File(tmp_path / "scene.h5", "w") as f:
        f["Y"] = X
        f["Y"].attrs.update({"image_shape": [ROWS, COLS], "pixel_order": "C", "nodata": NODATA})
    result = invoke("factorize", str(tmp_path / "scene.h5"), "--rank", "2", "--engine", engine,
                    "-o", str(tmp_path / "out.h5"))
    assert result.exit_code == 1
    assert "declares nodata pixels" in result.stderr and "--engine memory" in result.stderr
    result = invoke("factorize", str(tmp_path / "scene.h5"), "--rank", "2", "-o", str(tmp_path / "out.h5"))
    assert result.exit_code == 0, result.stderr
    assert "1 nodata pixels left out" in result.stderr


def test_any_raster_gdal_reads_comes_in_through_rasterio(scene, tmp_path, invoke):
    """An ENVI file read by GDAL (INPUT:gdal) gives the data, georeference and nodata pixels that
    mfcli's own ENVI reader gives."""
    from mfcli.io import load_dataset

    path, _, _ = scene
    assert invoke("convert", path, str(tmp_path / "scene.hdr")).exit_code == 0
    ours, gdal = load_dataset(str(tmp_path / "scene.hdr")), load_dataset(str(tmp_path / "scene.img") + ":gdal")
    np.testing.assert_array_equal(gdal.X, ours.X)
    np.testing.assert_array_equal(gdal.valid_pixels, ours.valid_pixels)
    assert gdal.georeference.transform == pytest.approx(ours.georeference.transform)
    assert gdal.georeference.epsg == 32633 and gdal.nodata == NODATA
    np.testing.assert_allclose(gdal.wavelengths, ours.wavelengths)


# --------------------------------------------------------------------------- ENVI map info (no rasterio needed)

def write_envi_scene(tmp_path, map_info: str, css: str | None = None, name="scene"):
    from mfcli.io.envi import write_envi

    cube = np.moveaxis(planted_scene()[0], 0, 2)
    fields = {"map info": map_info}
    if css:
        fields["coordinate system string"] = "{" + css + "}"
    fields["data ignore value"] = repr(NODATA)
    write_envi(str(tmp_path / f"{name}.hdr"), cube, None, fields)
    return str(tmp_path / f"{name}.hdr")


def test_envi_utm_map_info_without_a_coordinate_system_string(tmp_path):
    from mfcli.io import load_dataset

    path = write_envi_scene(tmp_path, "{UTM, 1, 1, 500000, 4200000, 30, 20, 33, North, WGS-84, units=Meters}")
    dataset = load_dataset(path)
    assert dataset.georeference.transform == TRANSFORM
    assert dataset.georeference.crs == utm_wgs84_wkt(33, True)
    assert dataset.nodata == NODATA and dataset.n_nodata_pixels == 5


def test_envi_map_info_reads_as_gdal_reads_it(tmp_path):
    """Reference pixel away from 1,1, rotation, non-square pixels: mfcli's transform and CRS are
    GDAL's (through rasterio)."""
    rasterio = needs_rasterio()
    from mfcli.io import load_dataset

    cases = {"north_up": "{UTM, 3.5, 2, 500000, 4200000, 30, 20, 33, South, WGS-84, units=Meters}",
             "rotated": "{UTM, 1, 1, 724522.127, 4074620.759, 1.1, 1.1, 11, North, WGS-84, units=Meters, "
                        "rotation=75.0}",
             "geographic": "{Geographic Lat/Lon, 1, 1, 10.5, 50.25, 0.001, 0.0005, WGS-84, units=Degrees}"}
    for name, map_info in cases.items():
        path = write_envi_scene(tmp_path, map_info, name=name)
        ours = load_dataset(path).georeference
        with rasterio.open(str(tmp_path / f"{name}.img")) as src:
            assert ours.transform == pytest.approx(tuple(src.transform)[:6], abs=1e-9), name
            assert rasterio.crs.CRS.from_wkt(ours.crs) == src.crs, name


def test_envi_coordinate_system_string_is_the_crs(tmp_path):
    from mfcli.io import load_dataset

    wkt = 'PROJCS["ETRS89 / LAEA Europe",GEOGCS["ETRS89",DATUM["European_Terrestrial_Reference_System_1989",' \
          'SPHEROID["GRS 1980",6378137,298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],' \
          'PROJECTION["Lambert_Azimuthal_Equal_Area"],PARAMETER["latitude_of_center",52],' \
          'PARAMETER["longitude_of_center",10],PARAMETER["false_easting",4321000],' \
          'PARAMETER["false_northing",3210000],UNIT["metre",1],AUTHORITY["EPSG","3035"]]'
    path = write_envi_scene(tmp_path, "{Arbitrary, 1, 1, 4321000, 3210000, 10, 10, units=Meters}", wkt)
    georeference = load_dataset(path).georeference
    assert georeference.crs == wkt and georeference.epsg == 3035


def test_a_map_info_mfcli_cannot_read_is_a_note_not_an_error(tmp_path):
    from mfcli.io import load_dataset

    dataset = load_dataset(write_envi_scene(tmp_path, "{UTM, 1, 1}"))
    assert dataset.georeference is None
    assert any("map info not understood" in note for note in dataset.notes)


# --------------------------------------------------------------------------- Georeference and the result file

@pytest.mark.parametrize("transform", [TRANSFORM, (0.001, 0.0, 10.5, 0.0, -0.0005, 50.25)])
def test_map_info_round_trip(transform):
    for crs in (utm_wgs84_wkt(33, True), WGS84_WKT, None):
        georeference = Georeference(crs, transform)
        back = Georeference.from_envi(georeference.envi_map_info(), crs)
        assert back.transform == pytest.approx(transform)


def test_rotated_map_info_round_trip_and_shear_refused():
    angle = math.radians(-75.0)  # map info rotation=75 turns the grid as GDAL reads it
    rotated = Georeference(None, (math.cos(angle) * 2, -math.sin(angle) * 2, 1000.0,
                                  -math.sin(angle) * 2, -math.cos(angle) * 2, 2000.0))
    fields = rotated.envi_map_info()
    assert fields[-1].startswith("rotation=") and float(fields[-1].split("=")[1]) == pytest.approx(75.0)
    assert Georeference.from_envi(fields).transform == pytest.approx(rotated.transform)
    with pytest.raises(DataError, match="sheared"):
        Georeference(None, (30.0, 5.0, 0.0, 0.0, -30.0, 0.0)).envi_map_info()


def test_georeference_checks_and_describes_itself():
    with pytest.raises(DataError, match="singular"):
        Georeference(None, (0.0, 0.0, 1.0, 0.0, 0.0, 1.0))
    with pytest.raises(DataError, match="six finite numbers"):
        Georeference(None, (1.0, 0.0, float("nan"), 0.0, -1.0, 0.0))
    assert Georeference(utm_wgs84_wkt(33, False), TRANSFORM).summary() == \
        "WGS 84 / UTM zone 33S (EPSG:32733), pixels 30 x 20 metre"
    assert Georeference(None, TRANSFORM).summary() == "no CRS (transform only), pixels 30 x 20"
    wkt2 = ('PROJCRS["WGS 84 / UTM zone 33N",BASEGEOGCRS["WGS 84",DATUM["World Geodetic System 1984",'
            'ELLIPSOID["WGS 84",6378137,298.257223563,LENGTHUNIT["metre",1]]]],CONVERSION["UTM zone 33N",'
            'METHOD["Transverse Mercator",ID["EPSG",9807]]],CS[Cartesian,2],AXIS["(E)",east,ORDER[1],'
            'LENGTHUNIT["metre",1]],AXIS["(N)",north,ORDER[2],LENGTHUNIT["metre",1]],ID["EPSG",32633]]')
    assert wkt_summary(wkt2) == {"name": "WGS 84 / UTM zone 33N", "epsg": 32633, "units": "metre"}
    assert wkt_summary("not wkt at all") == {"name": None, "epsg": None, "units": None}


def test_templates_are_the_epsg_crs():
    rasterio = needs_rasterio()
    for zone, north in ((1, True), (33, True), (60, False)):
        assert rasterio.crs.CRS.from_wkt(utm_wgs84_wkt(zone, north)) == \
            rasterio.crs.CRS.from_epsg((32600 if north else 32700) + zone)
    assert rasterio.crs.CRS.from_wkt(WGS84_WKT) == rasterio.crs.CRS.from_epsg(4326)


def test_the_result_file_stores_the_georeference_once(tmp_path):
    from mfcli.io.result import read_result, write_result
    from mfcli.result import Layer, Result

    valid = np.ones(ROWS * COLS, dtype=bool)
    valid[[0, 7]] = False
    georeference = Georeference(utm_wgs84_wkt(33, True), TRANSFORM)
    result = Result(model="nmf", layers=[Layer(W=np.ones((BANDS, 2)), H=np.ones((2, valid.sum())))],
                    input={"source": "x.tif", "image_shape": [ROWS, COLS], "pixel_order": "C",
                           "georeference": georeference.to_dict(), "valid_pixels": valid, "nodata": NODATA})
    write_result(result, tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5") as f:
        assert f["input"].attrs["crs"].decode() == georeference.crs  # a fixed-length UTF-8 string
        np.testing.assert_array_equal(f["input"].attrs["transform"], TRANSFORM)
        assert "georeference" not in json.loads(f["input"].attrs["meta"]) and "georeference" not in f["input"].attrs
    back = read_result(tmp_path / "r.h5")
    assert back.georeference == georeference
    np.testing.assert_array_equal(back.valid_pixels, valid)
