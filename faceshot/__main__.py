from faceshot.cli import main

main()
