"""apt repository formats, without I/O.

deb822 paragraphs (:mod:`.deb822`), Release/InRelease (:mod:`.release`), Packages and
Sources records (:mod:`.packages`), safe relative and by-hash paths (:mod:`.paths`),
incremental decompression (:mod:`.compression`) and the choice of index files from a
Release (:mod:`.selection`). Bytes or text in, frozen dataclasses out: nothing in this
package opens a file, a socket or a subprocess.
"""
