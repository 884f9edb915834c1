from nblib.cli import main

raise SystemExit(main())
