package main
import _ "github.com/philippseith/signalr"
func main(){}
