from eventrouter.cli import main

raise SystemExit(main())
