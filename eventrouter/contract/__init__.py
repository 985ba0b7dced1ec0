"""The contract between the layers: what a function is (``spec``), what a source declares
(``source``), what adapters and destinations implement (``adapters``, ``destination``) and the
small ports a running router hands its parts (``ports``). Nothing here runs events."""
