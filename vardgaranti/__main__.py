from vardgaranti.cli import main

raise SystemExit(main())
