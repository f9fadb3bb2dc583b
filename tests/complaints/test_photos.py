"""Complaint photos lose their EXIF (GPS, camera, time) and are re-encoded before they are stored."""
import io

import sqlalchemy as sa
from PIL import Image

from feedback.complaints import service
from feedback.complaints.models import ComplaintPhoto
from tests.complaints.test_form import _post, _valid

GPS_IFD = 0x8825


def _jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (32, 24), (200, 30, 30))
    exif = image.getexif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 28.0)})
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD)  # the fixture really has GPS
    return data


def test_a_jpeg_with_gps_exif_is_stored_without_exif(client, db, city):
    original = _jpeg_with_gps()
    assert _post(client, _valid(), files=[("IMG_0001.jpg", original, "image/jpeg")]).status_code == 303
    photo = db.session.scalars(sa.select(ComplaintPhoto)).one()
    stored = service.photo_path(photo).read_bytes()
    assert b"Exif" not in stored and b"PhoneMaker" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG" and image.size == (32, 24)
        assert not image.getexif()
    assert photo.size == len(stored)
    assert photo.content_type == "image/jpeg"


def test_an_undecodable_jpeg_loses_its_app_segments():
    app1 = b"\xff\xe1\x00\x0cExif\x00\x00GPS!"
    data = b"\xff\xd8" + app1 + b"\xff\xdb\x00\x04\x00\x00" + b"\xff\xda\x00\x02rest\xff\xd9"
    assert service.strip_jpeg_segments(data) == data.replace(app1, b"")
